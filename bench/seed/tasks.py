"""The seed's task, as in the tutorial: wait, then return "prefix___" + arg."""

import time


def simple_task(arg):
    time.sleep(60)
    return "prefix___" + arg

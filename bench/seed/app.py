"""The seed taskstack started from, rebuilt from the tutorial's description
for bench/cmd/pagebench (`make bench-page`): a Flask page served by gevent's
WSGIServer whose form posts to / and enqueues simple_task(arg) on the RQ
queue "default", then renders the page again.

Run with Debian's python3-flask, python3-rq and python3-gevent:

    SEED_ADDR=127.0.0.1:5000 REDIS_URL=redis://127.0.0.1:6379/0 python3 bench/seed/app.py

No RQ worker is needed to submit tasks; `rq worker default` (run from this
directory) would run them. gevent's access log is off, as taskstack logs no
line per request either.
"""

from gevent import monkey

monkey.patch_all()

import os  # noqa: E402

from flask import Flask, render_template_string, request  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402
from redis import Redis  # noqa: E402
from rq import Queue  # noqa: E402

from tasks import simple_task  # noqa: E402

app = Flask(__name__)
queue = Queue("default", connection=Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")))

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Tasks</title></head>
<body>
<h1>Submit a task</h1>
<form method="post" action="/">
  <label for="arg">Argument</label>
  <input id="arg" name="arg" value="{{ arg }}">
  <button type="submit">Submit task</button>
</form>
{% if job %}
<p>Task {{ job.id }} added to the queue at {{ job.enqueued_at }}. {{ queued }} tasks in the queue.</p>
{% endif %}
</body>
</html>
"""


@app.route("/", methods=["GET", "POST"])
def index():
    job, queued, arg = None, None, ""
    if request.method == "POST":
        arg = request.form.get("arg", "")
        job = queue.enqueue(simple_task, arg)
        queued = len(queue)
    return render_template_string(PAGE, job=job, queued=queued, arg=arg)


if __name__ == "__main__":
    host, _, port = os.environ.get("SEED_ADDR", "127.0.0.1:5000").rpartition(":")
    WSGIServer((host, int(port)), app, log=None).serve_forever()

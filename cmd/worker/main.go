// Command worker runs taskstack's tasks from the priority queues high,
// default and low, with an admin port for /metrics, /healthz and /readyz.
//
// Configuration is the environment (see the README); the one argument
// it takes is `healthcheck`, which exits 0 when the running worker answers.
package main

import "taskstack/internal/stack"

// Set by the build: -ldflags "-X main.version=... -X main.commit=...".
var version, commit = "dev", ""

func main() { stack.Main("worker", stack.RunWorker, version, commit) }

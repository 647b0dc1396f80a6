// Command monitor serves the asynqmon queue dashboard behind basic auth
// (optionally read-only), and is the one exporter of asynq's queue metrics
// on /metrics, next to /healthz and /readyz.
//
// Configuration is the environment (see the README); the one argument
// it takes is `healthcheck`, which exits 0 when the running monitor answers.
package main

import "taskstack/internal/stack"

// Set by the build: -ldflags "-X main.version=... -X main.commit=...".
var version, commit = "dev", ""

func main() { stack.Main("monitor", stack.RunMonitor, version, commit) }

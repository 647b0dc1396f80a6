// Command worker runs taskstack's tasks from the priority queues high,
// default and low, with an admin port for /metrics, /healthz and /readyz.
//
// Configuration is the environment (see the README); the one argument
// it takes is `healthcheck`, which exits 0 when the running worker answers.
package main

import (
	"context"
	"io"

	"taskstack/internal/process"
	"taskstack/internal/stack"
)

// Set by the build: -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

func main() { process.Main("worker", run) }

func run(ctx context.Context, args []string, getenv func(string) string, _, stderr io.Writer) error {
	return stack.RunWorker(ctx, stack.Invocation{Args: args, Getenv: getenv, Stderr: stderr, Version: version, Commit: commit})
}

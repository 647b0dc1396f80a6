// Command app serves taskstack's web page and JSON API. It enqueues and
// inspects tasks; it never runs them.
//
// Configuration is the environment (see the README); the one argument
// it takes is `healthcheck`, which exits 0 when the running app answers.
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

func main() { process.Main("app", run) }

func run(ctx context.Context, args []string, getenv func(string) string, _, stderr io.Writer) error {
	return stack.RunApp(ctx, stack.Invocation{Args: args, Getenv: getenv, Stderr: stderr, Version: version, Commit: commit})
}

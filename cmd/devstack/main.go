// Command devstack runs the app, the worker and the monitor in one process
// for development. With no REDIS_URL it starts an embedded in-memory Redis
// (miniredis): nothing is kept, and it is not for production. miniredis is
// linked here only, never into the production binaries.
package main

import (
	"context"
	"io"

	"github.com/alicebob/miniredis/v2"

	"taskstack/internal/process"
	"taskstack/internal/stack"
)

var (
	version = "dev"
	commit  = ""
)

func main() { process.Main("devstack", run) }

func run(ctx context.Context, args []string, getenv func(string) string, _, stderr io.Writer) error {
	return stack.RunDevstack(ctx, stack.Invocation{Args: args, Getenv: getenv, Stderr: stderr, Version: version, Commit: commit}, embeddedRedis)
}

func embeddedRedis() (string, func(), error) {
	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr("127.0.0.1:0"); err != nil {
		return "", nil, err
	}
	return mr.Addr(), mr.Close, nil
}

// Command devstack runs the app, the worker and the monitor in one process
// for development. With no REDIS_URL it starts an embedded in-memory Redis
// (miniredis): nothing is kept, and it is not for production. miniredis is
// linked here only, never into the production binaries.
package main

import (
	"context"

	"github.com/alicebob/miniredis/v2"

	"taskstack/internal/stack"
)

// Set by the build: -ldflags "-X main.version=... -X main.commit=...".
var version, commit = "dev", ""

func main() {
	stack.Main("devstack", func(ctx context.Context, inv stack.Invocation) error {
		return stack.RunDevstack(ctx, inv, embeddedRedis)
	}, version, commit)
}

func embeddedRedis() (string, func(), error) {
	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr("127.0.0.1:0"); err != nil {
		return "", nil, err
	}
	return mr.Addr(), mr.Close, nil
}

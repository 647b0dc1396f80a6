// Command worker runs taskstack's tasks from the priority queues high,
// default and low, with an admin port for /metrics, /healthz and /readyz.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"taskstack/internal/config"
	"taskstack/internal/process"
	"taskstack/internal/redisconn"
	"taskstack/internal/tasks"
	"taskstack/internal/telemetry"
	"taskstack/internal/worker"
)

// Set by the build: -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, _ io.Writer, stderr io.Writer) error {
	cfg, err := config.LoadWorker(getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if len(args) > 0 {
		switch args[0] {
		case "healthcheck":
			return process.Healthcheck(ctx, cfg.AdminAddr)
		default:
			return fmt.Errorf("unknown subcommand %q (only: healthcheck)", args[0])
		}
	}

	tel, err := process.NewTelemetry(ctx, cfg.Common, "worker", telemetry.Build{Version: version, Commit: commit}, stderr, getenv)
	if err != nil {
		return err
	}
	defer tel.Close()

	ln, err := process.Listen(cfg.AdminAddr)
	if err != nil {
		return err
	}
	// Not traced: the worker's Redis traffic is mostly idle polling.
	rc, err := redisconn.Open(cfg.Redis, nil)
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer rc.Close()

	w := worker.New(worker.Options{
		Config: cfg, Redis: rc, Catalogue: tasks.NewCatalogue(),
		Logger: tel.Logger, Registry: tel.Registry, Tracer: tel.Tracing.Provider,
	})
	tel.Logger.Info("worker admin listening", slog.String("addr", ln.Addr().String()), slog.String("env", cfg.Env))
	return w.Run(ctx, ln)
}

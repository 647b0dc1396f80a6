// Command monitor serves the asynqmon queue dashboard behind basic auth
// (optionally read-only), and is the one exporter of asynq's queue metrics
// on /metrics, next to /healthz and /readyz.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"taskstack/internal/config"
	"taskstack/internal/monitor"
	"taskstack/internal/process"
	"taskstack/internal/telemetry"
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
		fmt.Fprintln(os.Stderr, "monitor:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, _ io.Writer, stderr io.Writer) error {
	cfg, err := config.LoadMonitor(getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if len(args) > 0 {
		switch args[0] {
		case "healthcheck":
			return process.Healthcheck(ctx, cfg.Addr)
		default:
			return fmt.Errorf("unknown subcommand %q (only: healthcheck)", args[0])
		}
	}

	tel, err := process.NewTelemetry(ctx, cfg.Common, "monitor", telemetry.Build{Version: version, Commit: commit}, stderr, getenv)
	if err != nil {
		return err
	}
	defer tel.Close()

	ln, err := process.Listen(cfg.Addr)
	if err != nil {
		return err
	}
	mon, err := monitor.New(monitor.Options{Config: cfg, Logger: tel.Logger, Registry: tel.Registry})
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer mon.Close()

	mon.LogStart(ctx, tel.Logger, "monitor listening", ln.Addr().String())
	if err := process.Serve(ctx, ln, process.NewHTTPServer(mon, tel.Logger), monitor.ShutdownTimeout); err != nil {
		return err
	}
	tel.Logger.Info("monitor stopped")
	return nil
}

// Command app serves taskstack's web page and JSON API. It enqueues and
// inspects tasks; it never runs them.
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
	"taskstack/internal/telemetry"
	"taskstack/internal/web"
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
		fmt.Fprintln(os.Stderr, "app:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, _ io.Writer, stderr io.Writer) error {
	cfg, err := config.LoadApp(getenv)
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

	tel, err := process.NewTelemetry(ctx, cfg.Common, "app", telemetry.Build{Version: version, Commit: commit}, stderr, getenv)
	if err != nil {
		return err
	}
	defer tel.Close()

	ln, err := process.Listen(cfg.Addr)
	if err != nil {
		return err
	}
	app, err := web.NewApp(cfg, tel.Logger, tel.Registry, tel.Tracing.Provider)
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer app.Close()

	tel.Logger.Info("app listening", slog.String("addr", ln.Addr().String()), slog.String("env", cfg.Env))
	if err := process.Serve(ctx, ln, process.NewHTTPServer(app, tel.Logger), cfg.ShutdownTimeout); err != nil {
		return err
	}
	tel.Logger.Info("app stopped")
	return nil
}

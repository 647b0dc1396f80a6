// Command devstack runs the app, the worker and the monitor in one process
// for development. With no REDIS_URL it starts an embedded in-memory Redis
// (miniredis): nothing is kept, and it is not for production.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/alicebob/miniredis/v2"

	"taskstack/internal/config"
	"taskstack/internal/monitor"
	"taskstack/internal/process"
	"taskstack/internal/redisconn"
	"taskstack/internal/tasks"
	"taskstack/internal/telemetry"
	"taskstack/internal/web"
	"taskstack/internal/worker"
)

var (
	version = "dev"
	commit  = ""
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, _ io.Writer, stderr io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("devstack takes no arguments, got %q", args)
	}
	cfg, err := config.LoadDevstack(getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if cfg.App.Prod() {
		return errors.New("APP_ENV=prod: devstack is for development only; run app, worker and monitor separately")
	}
	tel, err := process.NewTelemetry(ctx, cfg.App.Common, "devstack", telemetry.Build{Version: version, Commit: commit}, stderr, getenv)
	if err != nil {
		return err
	}
	defer tel.Close()
	log := tel.Logger

	if cfg.App.Redis.URL == "" {
		mr := miniredis.NewMiniRedis()
		if err := mr.StartAddr("127.0.0.1:0"); err != nil {
			return fmt.Errorf("embedded redis: %w", err)
		}
		defer mr.Close()
		url := "redis://" + mr.Addr() + "/0"
		cfg.App.Redis.URL, cfg.Worker.Redis.URL, cfg.Monitor.Redis.URL = url, url, url
		log.Warn("REDIS_URL is not set: using an EMBEDDED IN-MEMORY Redis for development only; tasks are lost when devstack stops. Set REDIS_URL to use a real Redis.",
			slog.String("addr", mr.Addr()))
	}

	appLn, err := process.Listen(cfg.App.Addr)
	if err != nil {
		return err
	}
	adminLn, err := process.Listen(cfg.Worker.AdminAddr)
	if err != nil {
		_ = appLn.Close()
		return err
	}
	monLn, err := process.Listen(cfg.Monitor.Addr)
	if err != nil {
		_ = appLn.Close()
		_ = adminLn.Close()
		return err
	}
	monURL := "http://" + displayAddr(monLn.Addr().String()) + cfg.Monitor.RootPath + "/"
	if cfg.App.MonitorURL == "" {
		cfg.App.MonitorURL = monURL // the page links to the dashboard
	}
	mon, err := monitor.New(monitor.Options{
		Config: cfg.Monitor, Logger: log.With(slog.String("component", "monitor")), Registry: tel.Registry,
	})
	if err != nil {
		return err
	}
	defer mon.Close()

	app, err := web.NewApp(cfg.App, log.With(slog.String("component", "app")), tel.Registry, tel.Tracing.Provider)
	if err != nil {
		return err
	}
	defer app.Close()
	rc, err := redisconn.Open(cfg.Worker.Redis, nil)
	if err != nil {
		return err
	}
	defer rc.Close()
	w := worker.New(worker.Options{
		Config: cfg.Worker, Redis: rc, Catalogue: tasks.NewCatalogue(),
		Logger: log.With(slog.String("component", "worker")), Registry: tel.Registry, Tracer: tel.Tracing.Provider,
	})

	log.Info("devstack running", slog.String("app", "http://"+displayAddr(appLn.Addr().String())),
		slog.String("worker_admin", adminLn.Addr().String()), slog.String("monitor", monURL))
	mon.LogStart(ctx, log.With(slog.String("component", "monitor")), "monitor listening", monLn.Addr().String())

	var wg sync.WaitGroup
	errs := make(chan error, 3)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() {
		errs <- process.Serve(ctx, appLn, process.NewHTTPServer(app, log), cfg.App.ShutdownTimeout)
		cancel()
	})
	wg.Go(func() {
		errs <- w.Run(ctx, adminLn)
		cancel()
	})
	wg.Go(func() {
		errs <- process.Serve(ctx, monLn, process.NewHTTPServer(mon, log), monitor.ShutdownTimeout)
		cancel()
	})
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

func displayAddr(addr string) string {
	if len(addr) > 0 && addr[0] == ':' {
		return "localhost" + addr
	}
	return addr
}

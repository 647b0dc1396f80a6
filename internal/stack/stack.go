// Package stack wires taskstack's binaries: it maps each binary's
// environment configuration onto the options of the components it runs
// (web, worker, monitor, the task store, the Redis connector) inside the
// process skeleton. The mains call Run*; devstack composes App, Worker and
// Monitor in one process. This is the only package besides the mains that
// reads internal/config.
package stack

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace/noop"

	"taskstack/internal/config"
	"taskstack/internal/monitor"
	"taskstack/internal/process"
	"taskstack/internal/redisconn"
	"taskstack/internal/store"
	"taskstack/internal/tasks"
	"taskstack/internal/telemetry"
	"taskstack/internal/web"
	"taskstack/internal/worker"
)

// Invocation is how a main was called.
type Invocation struct {
	Args   []string
	Getenv func(string) string
	Stderr io.Writer
	// Version and Commit are stamped by the build.
	Version, Commit string
}

// Crash recovery settings that are not configured: a task whose worker
// died is due again at once, and due retries reach their queue within a
// second (asynq's default is 5 s).
const (
	leaseExpiredRetryDelay = 0
	forwardInterval        = time.Second
)

// registerEvery is how often app and monitor check that asynq's set of
// queues still holds ours (one SMISMEMBER).
const registerEvery = 5 * time.Second

func options(name string, inv Invocation, c config.Common) process.Options {
	return process.Options{
		Name: name, Version: inv.Version, Commit: inv.Commit, Args: inv.Args, Stderr: inv.Stderr,
		LogFormat: c.LogFormat, LogLevel: c.LogLevel,
		Tracing: telemetry.TracingOptions{Endpoint: c.OTLPEndpoint, Protocol: c.OTLPProtocol},
	}
}

func redisOptions(c config.Redis) redisconn.Options {
	return redisconn.Options{URL: c.URL, Password: c.Password, ClusterAddrs: c.ClusterAddrs}
}

func configError(err error) error { return fmt.Errorf("configuration: %w", err) }

// RunApp runs cmd/app.
func RunApp(ctx context.Context, inv Invocation) error {
	cfg, err := config.LoadApp(inv.Getenv)
	if err != nil {
		return configError(err)
	}
	o := options("app", inv, cfg.Common)
	o.HealthAddr, o.ShutdownTimeout = cfg.Addr, cfg.ShutdownTimeout
	return process.Run(ctx, o, func(ctx context.Context, p *process.Process) error {
		_, err := App(ctx, p, cfg)
		return err
	})
}

// App adds the web page and API on cfg.Addr (with /metrics, /healthz and
// /readyz) to p, and returns the address it listens on.
func App(ctx context.Context, p *process.Process, cfg config.App) (net.Addr, error) {
	ln, err := p.Listen(cfg.Addr)
	if err != nil {
		return nil, err
	}
	rc, err := redisconn.Open(redisOptions(cfg.Redis))
	if err != nil {
		return nil, err
	}
	p.Defer(rc.Close)
	// Traced: the app talks to Redis only while serving a request, so each
	// command becomes part of that request's trace.
	if _, off := p.Tracer.(noop.TracerProvider); !off {
		if err := redisconn.Instrument(rc, p.Tracer); err != nil {
			return nil, err
		}
	}
	st := store.New(store.Options{
		Redis: rc, Retention: cfg.Retention, Queues: tasks.Queues(),
		Tracer: p.Tracer, Propagator: p.Propagator, Logger: p.Logger,
	})
	srv, err := web.New(web.Options{
		Store: st, Catalogue: tasks.NewCatalogue(),
		MonitorURL: cfg.MonitorURL, GrafanaURL: cfg.GrafanaURL,
		Logger: p.Logger, Registry: p.Registry, Tracer: p.Tracer, Propagator: p.Propagator,
	})
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", srv)
	p.HandleOps(mux)
	p.Ready(st)
	p.Serve("app", ln, mux)
	p.Go("queue registration", func(ctx context.Context) error {
		st.KeepQueuesRegistered(ctx, registerEvery)
		return nil
	})
	p.Logger.InfoContext(ctx, "app listening", slog.String("addr", ln.Addr().String()), slog.String("env", cfg.Env))
	return ln.Addr(), nil
}

// loadWorker reads the worker's configuration and checks its queues
// against the catalogue's.
func loadWorker(getenv func(string) string) (config.Worker, error) {
	cfg, err := config.LoadWorker(getenv)
	if err != nil {
		return cfg, err
	}
	return cfg, checkQueues(cfg)
}

func checkQueues(cfg config.Worker) error {
	for q := range cfg.Queues {
		if !tasks.KnownQueue(q) {
			return fmt.Errorf("WORKER_QUEUES: unknown queue %q (known: %s)", q, strings.Join(tasks.Queues(), ", "))
		}
	}
	return nil
}

// RunWorker runs cmd/worker.
func RunWorker(ctx context.Context, inv Invocation) error {
	cfg, err := loadWorker(inv.Getenv)
	if err != nil {
		return configError(err)
	}
	o := options("worker", inv, cfg.Common)
	o.HealthAddr, o.AdminAddr, o.ShutdownTimeout = cfg.AdminAddr, cfg.AdminAddr, cfg.ShutdownTimeout
	return process.Run(ctx, o, func(ctx context.Context, p *process.Process) error {
		return Worker(ctx, p, cfg)
	})
}

// Worker adds the dequeue loops to p.
func Worker(_ context.Context, p *process.Process, cfg config.Worker) error {
	// Not traced: the worker's Redis traffic is mostly idle polling.
	rc, err := redisconn.Open(redisOptions(cfg.Redis))
	if err != nil {
		return err
	}
	p.Defer(rc.Close)
	st := store.New(store.Options{Redis: rc, Queues: tasks.Queues(), Logger: p.Logger})
	w, err := worker.New(worker.Options{
		Redis: rc, Catalogue: tasks.NewCatalogue(), Cancels: st,
		Queues: cfg.Queues, StrictPriority: cfg.StrictPriority, Concurrency: cfg.Concurrency,
		Servers: cfg.Servers, ShutdownTimeout: cfg.ShutdownTimeout, TaskCheckInterval: cfg.TaskCheckInterval,
		RecoveryInterval: cfg.RecoveryInterval, LeaseExpiryMargin: cfg.LeaseExpiryMargin,
		LeaseExpiredRetryDelay: leaseExpiredRetryDelay, ForwardInterval: forwardInterval,
		Logger: p.Logger, Registry: p.Registry, Tracer: p.Tracer, Propagator: p.Propagator,
	})
	if err != nil {
		return err
	}
	p.Ready(st)
	p.Go("worker", w.Run)
	return nil
}

// RunMonitor runs cmd/monitor.
func RunMonitor(ctx context.Context, inv Invocation) error {
	cfg, err := config.LoadMonitor(inv.Getenv)
	if err != nil {
		return configError(err)
	}
	o := options("monitor", inv, cfg.Common)
	o.HealthAddr, o.ShutdownTimeout = cfg.Addr, cfg.ShutdownTimeout
	return process.Run(ctx, o, func(ctx context.Context, p *process.Process) error {
		_, err := Monitor(ctx, p, cfg)
		return err
	})
}

// Monitor adds the dashboard on cfg.Addr (with /metrics, /healthz and
// /readyz) to p, and returns the address it listens on.
func Monitor(ctx context.Context, p *process.Process, cfg config.Monitor) (net.Addr, error) {
	ln, err := p.Listen(cfg.Addr)
	if err != nil {
		return nil, err
	}
	mon, err := monitor.New(monitor.Options{
		Redis: redisOptions(cfg.Redis), RootPath: cfg.RootPath,
		Username: cfg.Username, Password: cfg.Password, ReadOnly: cfg.ReadOnly,
		PrometheusURL: cfg.PrometheusURL, Queues: tasks.Queues(),
		Logger: p.Logger, Registry: p.Registry,
	})
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	p.Defer(mon.Close)
	st := store.New(store.Options{Redis: mon.Redis(), Queues: tasks.Queues(), Logger: p.Logger})
	mux := http.NewServeMux()
	mux.Handle("/", mon)
	p.HandleOps(mux)
	p.Ready(st)
	p.Serve("monitor", ln, mux)
	p.Go("queue registration", func(ctx context.Context) error {
		st.KeepQueuesRegistered(ctx, registerEvery)
		return nil
	})
	mon.LogStart(ctx, ln.Addr().String(), dashboardURL(ln.Addr(), cfg.RootPath))
	return ln.Addr(), nil
}

func dashboardURL(addr net.Addr, root string) string {
	return "http://" + process.DisplayAddr(addr) + root + "/"
}

// Embedded starts an in-memory Redis for devstack and returns its address
// and how to stop it.
type Embedded func() (addr string, stop func(), err error)

// RunDevstack runs cmd/devstack: the app, the worker and the monitor in
// one process. With no REDIS_URL it starts the embedded Redis.
func RunDevstack(ctx context.Context, inv Invocation, embedded Embedded) error {
	cfg, err := config.LoadDevstack(inv.Getenv)
	if err == nil {
		err = checkQueues(cfg.Worker)
	}
	if err != nil {
		return configError(err)
	}
	if cfg.App.Prod() {
		return fmt.Errorf("APP_ENV=prod: devstack is for development only; run app, worker and monitor separately")
	}
	o := options("devstack", inv, cfg.App.Common)
	o.HealthAddr, o.AdminAddr = cfg.App.Addr, cfg.Worker.AdminAddr
	o.ShutdownTimeout = max(cfg.App.ShutdownTimeout, cfg.Worker.ShutdownTimeout, cfg.Monitor.ShutdownTimeout)
	return process.Run(ctx, o, func(ctx context.Context, p *process.Process) error {
		if cfg.App.Redis.URL == "" {
			addr, stop, err := embedded()
			if err != nil {
				return fmt.Errorf("embedded redis: %w", err)
			}
			p.Defer(func() error { stop(); return nil })
			url := "redis://" + addr + "/0"
			cfg.App.Redis.URL, cfg.Worker.Redis.URL, cfg.Monitor.Redis.URL = url, url, url
			p.Logger.WarnContext(ctx, "REDIS_URL is not set: using an EMBEDDED IN-MEMORY Redis for development only; tasks are lost when devstack stops. Set REDIS_URL to use a real Redis.",
				slog.String("addr", addr))
		}
		monAddr, err := Monitor(ctx, p, cfg.Monitor)
		if err != nil {
			return err
		}
		monURL := dashboardURL(monAddr, cfg.Monitor.RootPath)
		if cfg.App.MonitorURL == "" {
			cfg.App.MonitorURL = monURL // the page links to the dashboard
		}
		if err := Worker(ctx, p, cfg.Worker); err != nil {
			return err
		}
		appAddr, err := App(ctx, p, cfg.App)
		if err != nil {
			return err
		}
		p.Logger.InfoContext(ctx, "devstack running", slog.String("app", "http://"+process.DisplayAddr(appAddr)),
			slog.String("worker_admin", cfg.Worker.AdminAddr), slog.String("monitor", monURL))
		return nil
	})
}

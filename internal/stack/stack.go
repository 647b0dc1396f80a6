// Package stack wires taskstack's binaries: it maps each binary's
// environment configuration onto the options of the components it runs
// (web, worker, monitor, the task store, the Redis connector) inside the
// process skeleton. The mains call Main with a Run*; devstack composes App,
// Worker and Monitor in one process. This is the only package besides the mains that
// reads internal/config.
package stack

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace/noop"

	"taskstack/internal/audit"
	"taskstack/internal/canary"
	"taskstack/internal/config"
	"taskstack/internal/guard"
	"taskstack/internal/monitor"
	"taskstack/internal/process"
	"taskstack/internal/redisconn"
	"taskstack/internal/schedule"
	"taskstack/internal/store"
	"taskstack/internal/tasks"
	"taskstack/internal/telemetry"
	"taskstack/internal/web"
	"taskstack/internal/webhook"
	"taskstack/internal/worker"
)

// Invocation is how a main was called.
type Invocation struct {
	Args   []string
	Getenv func(string) string
	Stdout io.Writer
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

// Main is what every main calls: it runs run under process.Main with the
// process's arguments and environment and the build's version.
func Main(name string, run func(context.Context, Invocation) error, version, commit string) {
	process.Main(name, func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
		return run(ctx, Invocation{Args: args, Getenv: getenv, Stdout: stdout, Stderr: stderr, Version: version, Commit: commit})
	})
}

// launch loads a binary's configuration and runs it in the process
// skeleton: plan fills in the binary's addresses and shutdown timeout and
// returns its setup.
func launch[C interface{ Base() config.Common }](ctx context.Context, inv Invocation, name string,
	load func(func(string) string) (C, error), plan func(C, *process.Options) func(context.Context, *process.Process) error) error {
	cfg, err := load(inv.Getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	c := cfg.Base()
	o := process.Options{
		Name: name, Version: inv.Version, Commit: inv.Commit, Args: inv.Args, Stderr: inv.Stderr,
		LogFormat: c.LogFormat, LogLevel: c.LogLevel,
		Tracing: telemetry.TracingOptions{Endpoint: c.OTLPEndpoint, Protocol: c.OTLPProtocol},
	}
	setup := plan(cfg, &o)
	return process.Run(ctx, o, setup)
}

func redisOptions(c config.Redis) redisconn.Options {
	return redisconn.Options{URL: c.URL, Password: c.Password, ClusterAddrs: c.ClusterAddrs}
}

// catalogue builds the task catalogue with what the task types need from
// the configuration: demo:webhook's allowlist.
func catalogue(webhookHosts []string, rec tasks.CanaryRecorder) (*tasks.Catalogue, error) {
	allow, err := webhook.ParseAllowlist(webhookHosts)
	if err != nil {
		return nil, fmt.Errorf("WEBHOOK_ALLOWED_HOSTS: %w", err)
	}
	deps := tasks.Deps{Canary: rec}
	if !allow.Empty() {
		deps.Webhook = webhook.NewClient(webhook.Options{Allow: allow})
	}
	return tasks.NewCatalogueWith(deps), nil
}

// loadApp reads the app's configuration and checks its webhook allowlist.
func loadApp(getenv func(string) string) (config.App, error) {
	cfg, err := config.LoadApp(getenv)
	if err != nil {
		return cfg, err
	}
	_, err = catalogue(cfg.WebhookAllowedHosts, nil)
	return cfg, err
}

// RunApp runs cmd/app; `app token new --name N --scopes S` makes a token.
func RunApp(ctx context.Context, inv Invocation) error {
	if len(inv.Args) > 0 && inv.Args[0] == "token" {
		return tokenCommand(inv.Args[1:], inv.Stdout)
	}
	return launch(ctx, inv, "app", loadApp, func(cfg config.App, o *process.Options) setupFunc {
		o.HealthAddr, o.AdminAddr, o.ShutdownTimeout = cfg.Addr, cfg.AdminAddr, cfg.ShutdownTimeout
		return func(ctx context.Context, p *process.Process) error { _, err := App(ctx, p, cfg); return err }
	})
}

// setupFunc adds a binary's components to its process.
type setupFunc = func(context.Context, *process.Process) error

// App adds the web page and API on cfg.Addr (with /healthz and /readyz;
// /metrics is on the admin port) to p, and returns the address it listens
// on.
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
	cat, err := catalogue(cfg.WebhookAllowedHosts, nil)
	if err != nil {
		return nil, err
	}
	st := store.New(store.Options{
		Redis: rc, Retention: cfg.Retention, Queues: tasks.Queues(),
		MaxPending: cfg.MaxPending, MaxMemory: cfg.MaxMemory,
		Tracer: p.Tracer, Propagator: p.Propagator, Logger: p.Logger,
	})
	wo, err := appAuth(ctx, p, cfg)
	if err != nil {
		return nil, err
	}
	wo.Store, wo.Catalogue = st, cat.WithLimits(tasks.Limits{MaxPayloadBytes: cfg.MaxPayloadBytes})
	wo.MonitorURL, wo.GrafanaURL, wo.MaxLists = cfg.MonitorURL, cfg.GrafanaURL, cfg.MaxLists
	wo.TraceURLTemplate, wo.LogsURLTemplate, wo.LogsCommandTemplate = cfg.TraceURLTemplate, cfg.LogsURLTemplate, cfg.LogsCommandTemplate
	wo.SubmitLimit = guard.NewLimiter(cfg.RateLimit, cfg.RateBurst)
	wo.Logger, wo.Registry, wo.Tracer, wo.Propagator = p.Logger, p.Registry, p.Tracer, p.Propagator
	srv, err := web.New(wo)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", srv)
	p.HandleHealth(mux)
	p.Ready(readiness{st})
	p.Serve("app", ln, mux)
	p.Go("queue registration", func(ctx context.Context) error {
		st.KeepQueuesRegistered(ctx, registerEvery)
		return nil
	})
	p.Go("capacity watch", func(ctx context.Context) error {
		st.Watch(ctx, capacityEvery)
		return nil
	})
	p.Logger.InfoContext(ctx, "app listening", slog.String("addr", ln.Addr().String()), slog.String("env", cfg.Env))
	return ln.Addr(), nil
}

// capacityEvery is how often the app reads Redis's memory and the pending
// counts that submissions are checked against (two commands).
const capacityEvery = 500 * time.Millisecond

// readiness is /readyz for the app: Redis answers and has memory left.
type readiness struct{ st *store.Store }

func (r readiness) Ping(ctx context.Context) error { return r.st.Ready(ctx) }

// tokensEvery is how often the tokens file is reread.
const tokensEvery = 5 * time.Second

// appAuth builds the app's authentication from its configuration: tokens
// (with login sessions), a trusted proxy header, or nothing (dev, loudly).
func appAuth(ctx context.Context, p *process.Process, cfg config.App) (web.Options, error) {
	var o web.Options
	lockout, err := guard.NewLockout("app", p.Registry, p.Logger)
	if err != nil {
		return o, err
	}
	o.Lockout = lockout
	var ao guard.AuthOptions
	if cfg.TokensFile != "" {
		if o.Tokens, err = guard.LoadTokens(cfg.TokensFile, p.Logger); err != nil {
			return o, fmt.Errorf("APP_TOKENS_FILE: %w", err)
		}
		p.Go("tokens file", func(ctx context.Context) error { o.Tokens.Watch(ctx, tokensEvery); return nil })
		o.Sessions = guard.NewSessions([]byte(cfg.SessionKey), cfg.SessionTTL, cfg.SecureCookie)
		ao.Tokens, ao.Sessions = o.Tokens, o.Sessions
	}
	if cfg.ProxyHeader != "" {
		nets, err := guard.ParseNetworks(cfg.ProxyCIDRs)
		if err != nil {
			return o, fmt.Errorf("APP_AUTH_PROXY_CIDRS: %w", err)
		}
		scopes, err := guard.ParseScopes(cfg.ProxyScopes)
		if err != nil {
			return o, fmt.Errorf("APP_AUTH_PROXY_SCOPES: %w", err)
		}
		ao.ProxyHeader, ao.ProxyNetworks, ao.ProxyScopes = cfg.ProxyHeader, nets, scopes
	}
	o.Auth = guard.NewAuthenticator(ao)
	if o.Auth.Open() {
		p.Logger.WarnContext(ctx, "app authentication is OFF: anyone who can reach the app can submit, read and delete tasks; set APP_TOKENS_FILE and APP_SESSION_KEY (required with APP_ENV=prod)")
	}
	return o, nil
}

// tokenCommand is `app token new --name ci --scopes tasks:read,tasks:write`:
// it prints a new token once, and the line that grants it in the tokens
// file.
func tokenCommand(args []string, stdout io.Writer) error {
	usage := errors.New("usage: app token new --name NAME --scopes tasks:read[,tasks:write][,tasks:admin]")
	if len(args) == 0 || args[0] != "new" {
		return usage
	}
	fs := flag.NewFlagSet("token new", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", "", "who or what the token is for")
	scopesFlag := fs.String("scopes", "", "comma-separated scopes")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 || *name == "" {
		return usage
	}
	scopes, err := guard.ParseScopes(*scopesFlag)
	if err != nil {
		return fmt.Errorf("--scopes: %w", err)
	}
	tok, line, err := guard.NewToken(*name, scopes)
	if err != nil {
		return err
	}
	if stdout == nil {
		stdout = io.Discard
	}
	_, err = fmt.Fprintf(stdout, "token (shown once; give it to %s):\n  %s\nline for APP_TOKENS_FILE:\n  %s\n", *name, tok, line)
	return err
}

// loadWorker reads the worker's configuration and checks its queues
// against the catalogue's.
func loadWorker(getenv func(string) string) (config.Worker, error) {
	cfg, err := config.LoadWorker(getenv)
	if err != nil {
		return cfg, err
	}
	return cfg, checkWorker(cfg)
}

// checkWorker checks the worker's queues against the catalogue's, and its
// schedule file, before anything binds or connects.
func checkWorker(cfg config.Worker) error {
	for q := range cfg.Queues {
		if !tasks.KnownQueue(q) {
			return fmt.Errorf("WORKER_QUEUES: unknown queue %q (known: %s)", q, strings.Join(tasks.Queues(), ", "))
		}
	}
	cat, err := catalogue(cfg.WebhookAllowedHosts, nil)
	if err != nil {
		return err
	}
	if cfg.ScheduleFile != "" {
		if _, err := schedule.Load(cfg.ScheduleFile, cat); err != nil {
			return fmt.Errorf("SCHEDULE_FILE: %w", err)
		}
	}
	return nil
}

// RunWorker runs cmd/worker.
func RunWorker(ctx context.Context, inv Invocation) error {
	return launch(ctx, inv, "worker", loadWorker, func(cfg config.Worker, o *process.Options) setupFunc {
		o.HealthAddr, o.AdminAddr, o.ShutdownTimeout = cfg.AdminAddr, cfg.AdminAddr, cfg.ShutdownTimeout
		return func(ctx context.Context, p *process.Process) error { return Worker(ctx, p, cfg) }
	})
}

// Worker adds the dequeue loops to p, the canary prober unless
// cfg.CanaryInterval is zero, and the scheduler of periodic tasks when
// cfg.ScheduleFile is set.
func Worker(_ context.Context, p *process.Process, cfg config.Worker) error {
	// Not traced: the worker's Redis traffic is mostly idle polling.
	rc, err := redisconn.Open(redisOptions(cfg.Redis))
	if err != nil {
		return err
	}
	p.Defer(rc.Close)
	st := store.New(store.Options{Redis: rc, Retention: cfg.Retention, Queues: tasks.Queues(), Logger: p.Logger})
	rec, err := canary.NewRecorder(st, p.Registry, p.Logger, tasks.Queues())
	if err != nil {
		return err
	}
	cat, err := catalogue(cfg.WebhookAllowedHosts, rec)
	if err != nil {
		return err
	}
	if cfg.ScheduleFile != "" {
		// Read again: checkWorker validated it at start, but it may have
		// changed since (the scheduler reloads it anyway).
		sched, err := schedule.Load(cfg.ScheduleFile, cat)
		if err != nil {
			return fmt.Errorf("SCHEDULE_FILE: %w", err)
		}
		// A tick's kept task is what refuses a second enqueue of that tick:
		// keep them longer than the grace whatever TASK_RETENTION says.
		sst := st
		if cfg.Retention < schedule.MinRetention {
			sst = store.New(store.Options{Redis: rc, Retention: schedule.MinRetention, Queues: tasks.Queues(), Logger: p.Logger})
		}
		rec, err := audit.New(p.Logger, p.Registry)
		if err != nil {
			return err
		}
		rec.Precreate(audit.ScheduleReload)
		s, err := schedule.New(schedule.Options{
			Path: cfg.ScheduleFile, Catalogue: cat, Store: sst, Grace: schedule.DefaultGrace,
			Logger: p.Logger, Registry: p.Registry, Audit: rec,
		}, sched)
		if err != nil {
			return err
		}
		p.Go("schedule", s.Run)
	}
	if cfg.CanaryInterval > 0 {
		pr, err := canary.NewProber(canary.Options{
			Store: st, Catalogue: cat, Queues: tasks.Queues(), Interval: cfg.CanaryInterval,
			Logger: p.Logger, Registry: p.Registry,
		})
		if err != nil {
			return err
		}
		p.Go("canary", pr.Run)
	}
	var autoscale *worker.Autoscale
	if cfg.AutoServers {
		autoscale = &worker.Autoscale{Max: cfg.ServersMax, Backlog: st}
	}
	w, err := worker.New(worker.Options{
		Redis: rc, Catalogue: cat.WithLimits(tasks.Limits{MaxResultBytes: cfg.MaxResultBytes}), Cancels: st, Attempts: st, RetryDelay: cat.RetryDelay,
		Autoscale: autoscale,
		Queues:    cfg.Queues, StrictPriority: cfg.StrictPriority, Concurrency: cfg.Concurrency,
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
	return launch(ctx, inv, "monitor", config.LoadMonitor, func(cfg config.Monitor, o *process.Options) setupFunc {
		o.HealthAddr, o.ShutdownTimeout = cfg.Addr, cfg.ShutdownTimeout
		return func(ctx context.Context, p *process.Process) error { _, err := Monitor(ctx, p, cfg); return err }
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
	if err := p.Registry.Register(canary.NewCollector(st, p.Logger)); err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
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
	return launch(ctx, inv, "devstack", loadDevstack, func(cfg config.Devstack, o *process.Options) setupFunc {
		o.HealthAddr, o.AdminAddr = cfg.App.Addr, cfg.Worker.AdminAddr
		o.ShutdownTimeout = max(cfg.App.ShutdownTimeout, cfg.Worker.ShutdownTimeout, cfg.Monitor.ShutdownTimeout)
		return func(ctx context.Context, p *process.Process) error { return devstack(ctx, p, cfg, embedded) }
	})
}

func loadDevstack(getenv func(string) string) (config.Devstack, error) {
	cfg, err := config.LoadDevstack(getenv)
	if cfg.App.Prod() {
		return cfg, fmt.Errorf("APP_ENV=prod: devstack is for development only; run app, worker and monitor separately")
	}
	if err == nil {
		err = checkWorker(cfg.Worker)
	}
	return cfg, err
}

// devstack adds the monitor, the worker and the app to p, on the embedded
// Redis when none is configured.
func devstack(ctx context.Context, p *process.Process, cfg config.Devstack, embedded Embedded) error {
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
}

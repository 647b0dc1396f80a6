// Package process is the skeleton every taskstack binary runs in: it
// answers the `healthcheck` subcommand (distroless images have no curl),
// builds logs, metrics and tracing, binds listeners before anything else
// happens, serves /metrics, /healthz and /readyz, runs the binary's
// components until a signal, and shuts down in order within a timeout:
// stop taking work, drain, stop the admin port, release connections, flush
// traces last.
package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"taskstack/internal/telemetry"
)

// Main runs run with the process's arguments and environment under a
// context that SIGINT or SIGTERM cancels, and exits non-zero on error.
// Only Main touches signals and os.Exit.
func Main(name string, run func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// Options describe one run of a binary.
type Options struct {
	// Name is the binary ("app"), used as the service name of logs and traces.
	Name    string
	Version string
	Commit  string
	// Args are the command-line arguments: none, or "healthcheck".
	Args   []string
	Stderr io.Writer

	LogFormat string // "text" or "json"
	LogLevel  slog.Level
	// Tracing configures the tracer provider (off without an endpoint).
	Tracing telemetry.TracingOptions

	// HealthAddr is where the healthcheck subcommand finds /healthz.
	HealthAddr string
	// AdminAddr, when set, gets its own listener serving Ops.
	AdminAddr string
	// ShutdownTimeout bounds each server's drain on shutdown.
	ShutdownTimeout time.Duration
}

// Pinger reports whether a dependency answers; /readyz asks every one.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Process is what a binary's setup function gets: its telemetry, and ways
// to add listeners, servers, background work, readiness checks and cleanup.
// Everything added is started after setup returns and stopped in order.
type Process struct {
	Logger     *slog.Logger
	Registry   *prometheus.Registry
	Tracer     trace.TracerProvider
	Propagator propagation.TextMapPropagator

	o         Options
	listeners []net.Listener
	servers   []server
	jobs      []job
	pingers   []Pinger
	closers   []func() error
}

type server struct {
	name string
	ln   net.Listener
	srv  *http.Server
}

type job struct {
	name string
	run  func(ctx context.Context) error
}

// Listen binds addr now, so that a port in use fails the process at once.
// The listener is closed if the process fails before serving on it.
func (p *Process) Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	p.listeners = append(p.listeners, ln)
	return ln, nil
}

// Serve serves h on ln once setup is done, with timeouts that keep slow
// clients from holding connections forever.
func (p *Process) Serve(name string, ln net.Listener, h http.Handler) {
	p.servers = append(p.servers, server{name: name, ln: ln, srv: NewHTTPServer(h, p.Logger)})
}

// Go runs run once setup is done. run must return soon after its context
// is cancelled (after draining what it started).
func (p *Process) Go(name string, run func(ctx context.Context) error) {
	p.jobs = append(p.jobs, job{name, run})
}

// Ready adds a dependency /readyz checks.
func (p *Process) Ready(pinger Pinger) { p.pingers = append(p.pingers, pinger) }

// Defer runs close when the process ends, after every server and job
// stopped (last added, first run).
func (p *Process) Defer(close func() error) { p.closers = append(p.closers, close) }

// Ops serves GET /metrics (this process's registry, OpenMetrics when asked
// for, so exemplars reach Prometheus), GET /healthz (the process is alive)
// and GET /readyz (every dependency answers within a second).
func (p *Process) Ops() http.Handler {
	mux := http.NewServeMux()
	p.HandleOps(mux)
	return mux
}

// HandleOps adds the routes of Ops to mux.
func (p *Process) HandleOps(mux *http.ServeMux) {
	mux.Handle("GET /metrics", telemetry.MetricsHandler(p.Registry))
	p.HandleHealth(mux)
	handleProfiling(mux)
}

// HandleHealth adds GET /healthz and GET /readyz (not /metrics) to mux, for
// a public port whose metrics are on the admin port.
func (p *Process) HandleHealth(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", p.readyz)
}

// readyTimeout bounds /readyz: a probe gives up after a couple of seconds.
const readyTimeout = time.Second

func (p *Process) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	for _, pg := range p.pingers {
		if err := pg.Ping(ctx); err != nil {
			// Debug, not error: a probe every few seconds during an outage
			// must not flood the logs.
			p.Logger.DebugContext(r.Context(), "not ready", slog.Any("err", err))
			w.Header().Set("Retry-After", "5")
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, `{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"a dependency (Redis) does not answer"}`+"\n")
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ready\n"))
}

// NewHTTPServer returns a server with timeouts that keep slow clients from
// holding connections forever.
func NewHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// Run runs one binary: the healthcheck subcommand, or telemetry, setup and
// everything setup added, until ctx is done or a server or job fails.
func Run(ctx context.Context, o Options, setup func(ctx context.Context, p *Process) error) (err error) {
	if len(o.Args) > 0 {
		if o.Args[0] == "healthcheck" && len(o.Args) == 1 {
			return Healthcheck(ctx, o.HealthAddr)
		}
		return fmt.Errorf("unknown arguments %q (only: healthcheck)", o.Args)
	}
	// Closed last: every line, the shutdown's included, is written.
	lw := telemetry.NewLogWriter(o.Stderr)
	defer lw.Close()
	log := telemetry.NewLogger(lw, o.LogFormat, o.LogLevel).With(slog.String("service", o.Name))
	o.Tracing.Service, o.Tracing.Version = o.Name, o.Version
	tr, err := telemetry.SetupTracing(ctx, o.Tracing)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer func() {
		// Last: spans of the shutdown itself are flushed too.
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if ferr := tr.Shutdown(fctx); ferr != nil {
			log.Warn("flush traces", slog.Any("err", ferr))
		}
	}()
	if tr.Enabled() {
		log.Info("tracing on", slog.String("endpoint", redactURL(o.Tracing.Endpoint)), slog.String("protocol", o.Tracing.Protocol))
	}
	p := &Process{
		Logger:     log,
		Registry:   telemetry.NewRegistry(telemetry.Build{Version: o.Version, Commit: o.Commit}),
		Tracer:     tr.Provider,
		Propagator: tr.Propagator,
		o:          o,
	}
	defer func() { err = errors.Join(err, p.close()) }()

	var admin *server
	if o.AdminAddr != "" {
		ln, err := p.Listen(o.AdminAddr)
		if err != nil {
			return err
		}
		admin = &server{name: "admin", ln: ln, srv: NewHTTPServer(p.Ops(), log)}
	}
	if err := setup(ctx, p); err != nil {
		return err
	}
	return p.run(ctx, admin)
}

// run serves and runs everything until ctx is done or one of them fails,
// then stops them: servers and jobs first, together, the admin port last
// (so /metrics can be scraped while the worker drains).
func (p *Process) run(ctx context.Context, admin *server) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(p.servers)+len(p.jobs)+1)
	fail := func(err error) {
		errs <- err
		cancel()
	}
	serve := func(s server) {
		if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
			fail(fmt.Errorf("%s: serve %s: %w", s.name, s.ln.Addr(), err))
		}
	}
	var adminDone chan struct{}
	if admin != nil {
		adminDone = make(chan struct{})
		go func() { defer close(adminDone); serve(*admin) }()
	}
	for _, s := range p.servers {
		wg.Go(func() { serve(s) })
	}
	for _, j := range p.jobs {
		wg.Go(func() {
			if err := j.run(ctx); err != nil {
				fail(fmt.Errorf("%s: %w", j.name, err))
			}
			cancel() // a job that ends ends the process
		})
	}
	<-ctx.Done()
	p.Logger.Info("shutting down", slog.Duration("timeout", p.o.ShutdownTimeout))
	for _, s := range p.servers {
		wg.Go(func() { p.shutdown(s) })
	}
	wg.Wait()
	if admin != nil {
		p.shutdown(*admin)
		<-adminDone
	}
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if len(all) == 0 {
		p.Logger.Info("stopped")
	}
	return errors.Join(all...)
}

func (p *Process) shutdown(s server) {
	ctx, cancel := context.WithTimeout(context.Background(), p.o.ShutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		p.Logger.Warn("shutdown did not finish in time", slog.String("server", s.name), slog.Any("err", err))
		_ = s.srv.Close()
	}
}

// close releases every listener (a no-op for those a server closed) and
// runs the deferred closers, last first.
func (p *Process) close() error {
	var errs []error
	for _, ln := range p.listeners {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	for _, c := range slices.Backward(p.closers) {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// Healthcheck GETs http://<addr>/healthz on the loopback interface and
// reports whether it answered 200 within two seconds.
func Healthcheck(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("healthcheck: address %q: %w", addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", req.URL, resp.Status)
	}
	return nil
}

// redactURL hides a password in an endpoint URL before it is logged.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// DisplayAddr turns a listen address into one a browser can open
// (":8081" is "localhost:8081").
func DisplayAddr(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// Package process holds what every binary does the same way around its own
// work: build logs, metrics and tracing from the common configuration, serve
// HTTP with an ordered, bounded shutdown, and answer the `healthcheck`
// subcommand that distroless images use instead of curl.
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
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"taskstack/internal/config"
	"taskstack/internal/telemetry"
)

// Telemetry is a process's logger, metrics registry and tracing.
type Telemetry struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry
	Tracing  *telemetry.Tracing
}

// NewTelemetry builds the logger, registry and tracer provider of one binary.
func NewTelemetry(ctx context.Context, c config.Common, service string, build telemetry.Build, stderr io.Writer, getenv func(string) string) (*Telemetry, error) {
	log := telemetry.NewLogger(stderr, c.LogFormat, c.LogLevel).With(slog.String("service", service))
	tr, err := telemetry.SetupTracing(ctx, c.OTLPEndpoint, service, build.Version, getenv)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	if tr.Enabled() {
		endpoint := c.OTLPEndpoint
		if u, err := url.Parse(endpoint); err == nil {
			endpoint = u.Redacted()
		}
		log.Info("tracing on", slog.String("endpoint", endpoint))
	}
	return &Telemetry{Logger: log, Registry: telemetry.NewRegistry(build), Tracing: tr}, nil
}

// Close flushes traces; call it last.
func (t *Telemetry) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.Tracing.Shutdown(ctx); err != nil {
		t.Logger.Warn("flush traces", slog.Any("err", err))
	}
}

// Listen binds addr now, so a port in use fails the process at once.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return ln, nil
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

// Serve serves h on ln until ctx is done, then lets in-flight requests
// finish within timeout.
func Serve(ctx context.Context, ln net.Listener, srv *http.Server, timeout time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown %s: %w", ln.Addr(), err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
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

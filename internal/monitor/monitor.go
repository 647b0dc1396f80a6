package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynq/x/metrics"
	"github.com/hibiken/asynqmon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"taskstack/internal/audit"
	"taskstack/internal/guard"
	"taskstack/internal/redisconn"
	"taskstack/internal/store"
	"taskstack/internal/tasks"
)

// Options build a Monitor.
type Options struct {
	// Redis names the deployment. The monitor opens its own clients, and
	// asynqmon builds more from it: every one carries the memory-usage fix.
	Redis redisconn.Options
	// RootPath is the dashboard's path prefix without its trailing slash
	// ("" for /); checked where it is configured.
	RootPath string
	// Username and Password protect the dashboard; empty means open (dev).
	Username, Password string
	// ReadOnly refuses every mutating dashboard call.
	ReadOnly bool
	// PrometheusURL backs the dashboard's metrics view ("" turns it off).
	PrometheusURL string
	// PrometheusTimeout bounds the metrics view's queries
	// (DefaultPrometheusTimeout when zero).
	PrometheusTimeout time.Duration

	// Queues are the queues whose orphaned tasks are exported (tasks.Queues
	// when nil).
	Queues []string

	Logger *slog.Logger
	// Registry receives the asynq queue collector and the orphaned-task
	// gauges.
	Registry prometheus.Registerer
}

// Monitor is the dashboard handler and the Redis connections it owns.
type Monitor struct {
	o         Options
	log       *slog.Logger
	redis     redis.UniversalClient
	inspector *asynq.Inspector
	dash      *asynqmon.HTTPHandler
	prom      *promMetrics
	lockout   *guard.Lockout
	audit     *audit.Recorder
	handler   http.Handler
}

// New connects to Redis, registers the queue collector on o.Registry and
// builds the dashboard handler. Close releases the connections.
func New(o Options) (*Monitor, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.PrometheusTimeout <= 0 {
		o.PrometheusTimeout = DefaultPrometheusTimeout
	}
	if o.Queues == nil {
		o.Queues = tasks.Queues()
	}
	o.RootPath = strings.TrimSuffix(o.RootPath, "/")
	lockout, err := guard.NewLockout("monitor", o.Registry, o.Logger)
	if err != nil {
		return nil, err
	}
	rec, err := audit.New(o.Logger, o.Registry)
	if err != nil {
		return nil, err
	}
	rec.Precreate(audit.Run, audit.Archive, audit.Delete, audit.Cancel, audit.Pause, audit.Unpause, audit.DeleteQueue)
	connOpt, err := redisconn.ConnOpt(o.Redis, memoryUsageFix{})
	if err != nil {
		return nil, err
	}
	rc, err := redisconn.Open(o.Redis, memoryUsageFix{})
	if err != nil {
		return nil, err
	}
	m := &Monitor{
		o:         o,
		log:       o.Logger,
		redis:     rc,
		inspector: asynq.NewInspectorFromRedisClient(rc),
		lockout:   lockout,
		audit:     rec,
		prom: &promMetrics{
			base:    strings.TrimSuffix(o.PrometheusURL, "/"),
			client:  &http.Client{Timeout: o.PrometheusTimeout},
			timeout: o.PrometheusTimeout,
			now:     time.Now,
		},
	}
	if err := o.Registry.Register(metrics.NewQueueMetricsCollector(m.inspector)); err != nil {
		_ = rc.Close()
		return nil, fmt.Errorf("monitor: register queue collector: %w", err)
	}
	st := store.New(store.Options{Redis: rc, Queues: o.Queues, Logger: o.Logger})
	if err := o.Registry.Register(newOrphanCollector(st.Orphaned, o.Logger)); err != nil {
		_ = rc.Close()
		return nil, fmt.Errorf("monitor: register orphaned-task collector: %w", err)
	}
	m.dash = asynqmon.New(asynqmon.Options{
		RootPath:          o.RootPath,
		RedisConnOpt:      connOpt,
		PrometheusAddress: o.PrometheusURL,
		ReadOnly:          o.ReadOnly,
	})
	m.handler = m.routes()
	return m, nil
}

// ServeHTTP serves the dashboard under the root path.
func (m *Monitor) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.handler.ServeHTTP(w, r) }

// Redis is the monitor's own client (for readiness).
func (m *Monitor) Redis() redis.UniversalClient { return m.redis }

// Ping reports whether Redis answers.
func (m *Monitor) Ping(ctx context.Context) error { return redisconn.Ping(ctx, m.redis, time.Second) }

// Close releases asynqmon's and the monitor's Redis connections.
func (m *Monitor) Close() error {
	return errors.Join(m.dash.Close(), m.redis.Close())
}

// LogStart logs where the dashboard is (its URL) and how it is protected;
// with no credentials (dev only: prod refuses to start) it says so loudly.
func (m *Monitor) LogStart(ctx context.Context, addr, url string) {
	m.log.InfoContext(ctx, "monitor listening", slog.String("addr", addr), slog.String("dashboard", url),
		slog.Bool("auth", m.o.Username != ""), slog.Bool("read_only", m.o.ReadOnly),
		slog.Bool("prometheus", m.o.PrometheusURL != ""))
	if m.o.Username == "" {
		m.log.WarnContext(ctx, "monitor authentication is OFF: anyone who can reach "+url+" can see and change tasks; set MONITOR_USERNAME and MONITOR_PASSWORD (required with APP_ENV=prod)")
	}
	if m.o.PrometheusURL == "" {
		m.log.InfoContext(ctx, "monitor metrics view is off: set MONITOR_PROMETHEUS_URL to a Prometheus that scrapes this /metrics")
	}
}

package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynq/x/metrics"
	"github.com/hibiken/asynqmon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"taskstack/internal/config"
	"taskstack/internal/redisconn"
)

// validRootPath keeps MONITOR_ROOT_PATH a plain path: it becomes part of
// ServeMux patterns, where "{" or a space would change their meaning.
var validRootPath = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)*$`)

// Options builds a Monitor.
type Options struct {
	Config config.Monitor
	Logger *slog.Logger
	// Registry receives the asynq queue collector; /metrics serves it.
	Registry *prometheus.Registry
	// PrometheusTimeout bounds the metrics view's queries
	// (DefaultPrometheusTimeout when zero).
	PrometheusTimeout time.Duration
}

// Monitor is the dashboard handler and the Redis connections it owns.
type Monitor struct {
	cfg       config.Monitor
	log       *slog.Logger
	registry  *prometheus.Registry
	redis     redis.UniversalClient
	inspector *asynq.Inspector
	dash      *asynqmon.HTTPHandler
	prom      *promMetrics
	handler   http.Handler
}

// New connects to Redis, registers the queue collector on o.Registry and
// builds the handler. Nothing is served until the handler is; Close releases
// the connections.
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
	cfg := o.Config
	cfg.RootPath = strings.TrimSuffix(cfg.RootPath, "/")
	if !validRootPath.MatchString(cfg.RootPath) {
		return nil, fmt.Errorf("monitor: root path %q must be empty or /segments of letters, digits, '-', '_', '.'", cfg.RootPath)
	}
	connOpt, err := redisconn.ConnOpt(cfg.Redis)
	if err != nil {
		return nil, err
	}
	rc, err := redisconn.Open(cfg.Redis, nil)
	if err != nil {
		return nil, err
	}
	rc.AddHook(memoryUsageFix{})
	m := &Monitor{
		cfg:       cfg,
		log:       o.Logger,
		registry:  o.Registry,
		redis:     rc,
		inspector: asynq.NewInspectorFromRedisClient(rc),
		prom: &promMetrics{
			base:    strings.TrimSuffix(cfg.PrometheusURL, "/"),
			client:  &http.Client{Timeout: o.PrometheusTimeout},
			timeout: o.PrometheusTimeout,
			now:     time.Now,
		},
	}
	if err := o.Registry.Register(metrics.NewQueueMetricsCollector(m.inspector)); err != nil {
		_ = rc.Close()
		return nil, fmt.Errorf("monitor: register queue collector: %w", err)
	}
	m.dash = asynqmon.New(asynqmon.Options{
		RootPath:          cfg.RootPath,
		RedisConnOpt:      fixedConnOpt{connOpt},
		PrometheusAddress: cfg.PrometheusURL,
		ReadOnly:          cfg.ReadOnly,
	})
	m.handler = m.routes()
	return m, nil
}

// ServeHTTP serves the dashboard, /metrics, /healthz and /readyz.
func (m *Monitor) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.handler.ServeHTTP(w, r) }

// RootPath is the dashboard's path prefix without its trailing slash
// ("" when it is served at /).
func (m *Monitor) RootPath() string { return m.cfg.RootPath }

// AuthEnabled reports whether the dashboard asks for credentials.
func (m *Monitor) AuthEnabled() bool { return m.cfg.Username != "" }

// Close releases asynqmon's and the monitor's Redis connections.
func (m *Monitor) Close() error {
	return errors.Join(m.dash.Close(), m.redis.Close())
}

// ShutdownTimeout is how long in-flight dashboard requests get on SIGTERM;
// above the Prometheus timeout so a metrics refresh can finish.
const ShutdownTimeout = 15 * time.Second

// LogStart logs where the dashboard is and how it is protected; with no
// credentials (dev only: prod refuses to start) it says so loudly.
func (m *Monitor) LogStart(ctx context.Context, log *slog.Logger, msg, addr string) {
	url := "http://" + displayAddr(addr) + m.cfg.RootPath + "/"
	log.InfoContext(ctx, msg, slog.String("addr", addr), slog.String("dashboard", url),
		slog.Bool("auth", m.AuthEnabled()), slog.Bool("read_only", m.cfg.ReadOnly),
		slog.Bool("prometheus", m.cfg.PrometheusURL != ""), slog.String("env", m.cfg.Env))
	if !m.AuthEnabled() {
		log.WarnContext(ctx, "monitor authentication is OFF: anyone who can reach "+url+" can see and change tasks; set MONITOR_USERNAME and MONITOR_PASSWORD (required with APP_ENV=prod)")
	}
	if m.cfg.PrometheusURL == "" {
		log.InfoContext(ctx, "monitor metrics view is off: set MONITOR_PROMETHEUS_URL to a Prometheus that scrapes this /metrics")
	}
}

func displayAddr(addr string) string {
	if strings.HasPrefix(addr, ":") {
		return "localhost" + addr
	}
	return addr
}

package web

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"taskstack/internal/redisconn"
	"taskstack/internal/tasks"
	"taskstack/internal/telemetry"
)

// Deps is what the app needs to serve.
type Deps struct {
	Enqueuer  *tasks.Enqueuer
	Inspector *asynq.Inspector
	// Redis is used for readiness and idempotency keys.
	Redis      redis.UniversalClient
	Logger     *slog.Logger
	Registry   *prometheus.Registry
	Tracer     trace.TracerProvider
	Retention  time.Duration
	MonitorURL string
	GrafanaURL string
}

// Server is the app's HTTP handler.
type Server struct {
	enq        *tasks.Enqueuer
	insp       *asynq.Inspector
	redis      redis.UniversalClient
	log        *slog.Logger
	tp         trace.TracerProvider
	httpm      *telemetry.HTTPMetrics
	enqueued   *prometheus.CounterVec
	registry   *prometheus.Registry
	retention  time.Duration
	monitorURL string
	grafanaURL string
	page       *pageRenderer
	handler    http.Handler
}

// New builds the app's handler.
func New(d Deps) (*Server, error) {
	s := &Server{
		enq: d.Enqueuer, insp: d.Inspector, redis: d.Redis, log: d.Logger, tp: d.Tracer,
		registry: d.Registry, retention: d.Retention,
		monitorURL: d.MonitorURL, grafanaURL: d.GrafanaURL,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	s.httpm = telemetry.NewHTTPMetrics(s.registry)
	s.enqueued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "taskstack_tasks_enqueued_total",
		Help: "Enqueue attempts by task type, queue and outcome (ok, rejected by validation, error from Redis).",
	}, []string{"type", "queue", "outcome"})
	s.registry.MustRegister(s.enqueued)
	// Pre-create the known series so rates start from zero, not from absent.
	for _, typ := range s.enq.Catalogue().Types() {
		for _, q := range tasks.Queues() {
			for _, o := range []string{"ok", "rejected", "error"} {
				s.enqueued.WithLabelValues(typ, q, o)
			}
		}
	}
	page, err := newPageRenderer()
	if err != nil {
		return nil, err
	}
	s.page = page
	s.handler = s.routes()
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, err := w.Write([]byte("ok\n"))
	return err
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if err := redisconn.Ping(r.Context(), s.redis, time.Second); err != nil {
		// Answered here, not through report(): a probe every few seconds
		// during an outage must not flood the logs with errors.
		s.log.DebugContext(r.Context(), "not ready", slog.Any("err", err))
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusServiceUnavailable)
		return json.NewEncoder(w).Encode(newProblem(http.StatusServiceUnavailable, "Redis does not answer"))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, err := w.Write([]byte("ready\n"))
	return err
}

// countEnqueue records one enqueue outcome with bounded labels.
func (s *Server) countEnqueue(typ, queue string, err error) {
	if _, ok := s.enq.Catalogue().Lookup(typ); !ok {
		typ = "unknown"
	}
	if !tasks.KnownQueue(queue) {
		queue = "unknown"
	}
	outcome := "ok"
	if err != nil {
		outcome = "error"
		if p := classify(err); p.Status < 500 {
			outcome = "rejected"
		}
	}
	s.enqueued.WithLabelValues(typ, queue, outcome).Inc()
}

// requestContext bounds Redis work done for a request so a slow Redis
// cannot hang a client.
func requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 5*time.Second)
}

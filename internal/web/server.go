package web

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"taskstack/internal/store"
	"taskstack/internal/tasks"
	"taskstack/internal/telemetry"
)

// Options build the app's handler.
type Options struct {
	Store     *store.Store
	Catalogue *tasks.Catalogue
	// MonitorURL and GrafanaURL are linked from the page ("" hides them).
	MonitorURL string
	GrafanaURL string
	// RequestTimeout bounds the Redis work of one request (5s when zero).
	RequestTimeout time.Duration

	Logger     *slog.Logger
	Registry   prometheus.Registerer
	Tracer     trace.TracerProvider
	Propagator propagation.TextMapPropagator
}

// Server is the app's HTTP handler.
type Server struct {
	o        Options
	store    *store.Store
	cat      *tasks.Catalogue
	log      *slog.Logger
	httpm    *telemetry.HTTPMetrics
	enqueued *prometheus.CounterVec
	page     *pageRenderer
	handler  http.Handler
}

// New builds the app's handler.
func New(o Options) (*Server, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.Tracer == nil {
		o.Tracer = noop.NewTracerProvider()
	}
	if o.Propagator == nil {
		o.Propagator = propagation.TraceContext{}
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 5 * time.Second
	}
	s := &Server{o: o, store: o.Store, cat: o.Catalogue, log: o.Logger}
	var err error
	if s.httpm, err = telemetry.NewHTTPMetrics(o.Registry); err != nil {
		return nil, err
	}
	s.enqueued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "taskstack_tasks_enqueued_total",
		Help: "Enqueue attempts by task type, queue and outcome (ok, rejected by validation, error from Redis).",
	}, []string{"type", "queue", "outcome"})
	if err := o.Registry.Register(s.enqueued); err != nil {
		return nil, err
	}
	// Pre-create the known series so rates start from zero, not from absent.
	for _, typ := range s.cat.Types() {
		for _, q := range tasks.Queues() {
			for _, o := range []string{"ok", "rejected", "error"} {
				s.enqueued.WithLabelValues(typ, q, o)
			}
		}
	}
	if s.page, err = newPageRenderer(); err != nil {
		return nil, err
	}
	s.handler = s.routes()
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// countEnqueue records one enqueue outcome with bounded labels.
func (s *Server) countEnqueue(typ, queue string, err error) {
	if _, ok := s.cat.Lookup(typ); !ok {
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

// requestContext bounds the Redis work done for a request so a slow Redis
// cannot hang a client.
func (s *Server) requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.o.RequestTimeout)
}

package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"taskstack/internal/audit"
	"taskstack/internal/guard"
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

	// Auth tells who a request comes from (nil: nobody is asked, dev).
	Auth *guard.Authenticator
	// Tokens and Sessions let people log in with a token on the page.
	Tokens   *guard.Tokens
	Sessions *guard.Sessions
	// Lockout slows down addresses that keep failing to authenticate.
	Lockout *guard.Lockout
	// SubmitLimit is every credential's submission budget (nil: none).
	SubmitLimit *guard.Limiter
	// MaxLists bounds the task lists read at once (8 when zero).
	MaxLists int
	// LiveInterval is how old a list, queue or task snapshot may be before
	// it is read again, and how often live views are pushed (1s when zero).
	LiveInterval time.Duration
	// A task's links to its trace ({trace_id}) and log lines ({task_id},
	// {queue}, {trace_id}), or the command that finds its log lines
	// ({task_id}); "" leaves each out.
	TraceURLTemplate    string
	LogsURLTemplate     string
	LogsCommandTemplate string

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
	auth     *guard.Authenticator
	httpm    *telemetry.HTTPServer
	audit    *audit.Recorder
	links    taskLinks
	enqueued *prometheus.CounterVec
	// enqueuedSeries are enqueued's children by type, queue and outcome.
	enqueuedSeries map[[3]string]prometheus.Counter
	rejected       *prometheus.CounterVec
	lists          chan struct{}
	streams        chan struct{}
	live           *snapshots
	errLog         *sampledLog
	page           *pageRenderer
	openapi        *snapshot
	patterns       []string
	handler        http.Handler
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
	if o.Auth == nil {
		o.Auth = guard.NewAuthenticator(guard.AuthOptions{})
	}
	if o.MaxLists <= 0 {
		o.MaxLists = 8
	}
	if o.LiveInterval <= 0 {
		o.LiveInterval = time.Second
	}
	s := &Server{
		o: o, store: o.Store, cat: o.Catalogue, log: o.Logger, auth: o.Auth,
		links: taskLinks{trace: o.TraceURLTemplate, logs: o.LogsURLTemplate, logsCommand: o.LogsCommandTemplate},
		lists: make(chan struct{}, o.MaxLists), streams: make(chan struct{}, maxEventStreams),
		live: newSnapshots(o.LiveInterval, 512), errLog: newSampledLog(o.Logger, 5*time.Second),
	}
	var err error
	if s.httpm, err = telemetry.NewHTTPServer(o.Registry, o.Tracer, o.Propagator); err != nil {
		return nil, err
	}
	if s.audit, err = audit.New(o.Logger, o.Registry); err != nil {
		return nil, err
	}
	s.audit.Precreate(audit.Submit, audit.Batch, audit.Delete, audit.Cancel)
	s.enqueued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "taskstack_tasks_enqueued_total",
		Help: "Enqueue attempts by task type, queue and outcome (ok, rejected by validation, error from Redis).",
	}, []string{"type", "queue", "outcome"})
	s.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "taskstack_tasks_rejected_total",
		Help: "Task submissions refused before reaching a queue, by reason: rate_limit (per credential), queue_full (QUEUE_MAX_PENDING), redis_full (Redis memory headroom or OOM).",
	}, []string{"reason"})
	for _, c := range []prometheus.Collector{s.enqueued, s.rejected} {
		if err := o.Registry.Register(c); err != nil {
			return nil, err
		}
	}
	for _, reason := range []string{"rate_limit", "queue_full", "redis_full"} {
		s.rejected.WithLabelValues(reason)
	}
	// Pre-create the known series so rates start from zero, not from absent,
	// and keep them: a submission reads a map instead of hashing labels.
	s.enqueuedSeries = map[[3]string]prometheus.Counter{}
	for _, typ := range s.cat.Submittable() {
		for _, q := range tasks.Queues() {
			for _, o := range []string{"ok", "rejected", "error"} {
				s.enqueuedSeries[[3]string{typ, q, o}] = s.enqueued.WithLabelValues(typ, q, o)
			}
		}
	}
	if s.page, err = newPageRenderer(); err != nil {
		return nil, err
	}
	if s.openapi, err = openAPISnapshot(); err != nil {
		return nil, err
	}
	s.handler = s.routes()
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Routes lists the route patterns the server registered ("GET /api/v1/tasks"),
// but for the catch-alls: what the OpenAPI document must describe.
func (s *Server) Routes() []string { return slices.Clone(s.patterns) }

// countEnqueue records one enqueue outcome with bounded labels, and why a
// submission was refused for capacity.
func (s *Server) countEnqueue(typ, queue string, err error) {
	switch {
	case errors.Is(err, store.ErrQueueFull):
		s.rejected.WithLabelValues("queue_full").Inc()
	case errors.Is(err, store.ErrRedisFull):
		s.rejected.WithLabelValues("redis_full").Inc()
	}
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
	if c, ok := s.enqueuedSeries[[3]string{typ, queue, outcome}]; ok {
		c.Inc()
		return
	}
	s.enqueued.WithLabelValues(typ, queue, outcome).Inc()
}

// requestContext bounds the Redis work done for a request so a slow Redis
// cannot hang a client.
func (s *Server) requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.o.RequestTimeout)
}

// listSlot waits briefly for one of the MaxLists slots of list reads; a
// busy app answers 503 rather than piling up reads of Redis.
func (s *Server) listSlot(ctx context.Context) (release func(), err error) {
	t := time.NewTimer(250 * time.Millisecond)
	defer t.Stop()
	select {
	case s.lists <- struct{}{}:
		return func() { <-s.lists }, nil
	case <-t.C:
	case <-ctx.Done():
	}
	p := newProblem(http.StatusServiceUnavailable, "too many task lists are being read right now; try again in a moment")
	p.retryAfter = 1
	return nil, p
}

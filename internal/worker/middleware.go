package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"taskstack/internal/store"
	"taskstack/internal/tasks"
	"taskstack/internal/telemetry"
)

// Metrics are the worker's per task type and queue series.
type Metrics struct {
	processed *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	wait      *prometheus.HistogramVec
	delay     *prometheus.HistogramVec
	inFlight  *prometheus.GaugeVec
	types     map[string]bool
	queues    map[string]bool
	children  map[[2]string]*series
}

// series are one (type, queue)'s children, resolved once.
type series struct {
	success, failure prometheus.Counter
	duration, wait   prometheus.Observer
	delay            prometheus.Observer
	inFlight         prometheus.Gauge
}

func (m *Metrics) series(typ, queue string) *series {
	if s, ok := m.children[[2]string{typ, queue}]; ok {
		return s
	}
	typ, queue = m.labels(typ, queue)
	if s, ok := m.children[[2]string{typ, queue}]; ok {
		return s
	}
	return &series{
		success: m.processed.WithLabelValues(typ, queue, "success"), failure: m.processed.WithLabelValues(typ, queue, "failure"),
		duration: m.duration.WithLabelValues(typ, queue), wait: m.wait.WithLabelValues(typ, queue), inFlight: m.inFlight.WithLabelValues(typ, queue),
		delay: m.delay.WithLabelValues(typ, queue),
	}
}

// NewMetrics registers the worker's series on reg and pre-creates the known
// label combinations. Unknown types or queues are folded into "unknown", so
// a bad task can never create new series.
func NewMetrics(reg prometheus.Registerer, types, queues []string) (*Metrics, error) {
	labels := []string{"type", "queue"}
	m := &Metrics{
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "taskstack_tasks_processed_total",
			Help: "Task attempts finished, by type, queue and outcome (success or failure).",
		}, []string{"type", "queue", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "taskstack_task_duration_seconds",
			Help:    "Time a handler ran, by task type and queue.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}, labels),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "taskstack_task_queue_wait_seconds",
			Help:    "Time from enqueue (task header) to handler start, by task type and queue; includes scheduled delay and retry back-off.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, labels),
		delay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "taskstack_task_start_delay_seconds",
			Help:    "Time from when a task was due (enqueued, or its process_in delay ended) to its first attempt's start, by task type and queue: the queue-latency SLI.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, labels),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "taskstack_tasks_in_progress",
			Help: "Tasks being processed right now, by type and queue.",
		}, labels),
		types:    map[string]bool{},
		queues:   map[string]bool{},
		children: map[[2]string]*series{},
	}
	for _, c := range []prometheus.Collector{m.processed, m.duration, m.wait, m.delay, m.inFlight} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("worker metrics: %w", err)
		}
	}
	for _, t := range types {
		m.types[t] = true
		for _, q := range queues {
			m.queues[q] = true
			m.children[[2]string{t, q}] = &series{
				success: m.processed.WithLabelValues(t, q, "success"), failure: m.processed.WithLabelValues(t, q, "failure"),
				duration: m.duration.WithLabelValues(t, q), wait: m.wait.WithLabelValues(t, q), inFlight: m.inFlight.WithLabelValues(t, q),
				delay: m.delay.WithLabelValues(t, q),
			}
		}
	}
	return m, nil
}

func (m *Metrics) labels(typ, queue string) (string, string) {
	if !m.types[typ] {
		typ = "unknown"
	}
	if !m.queues[queue] {
		queue = "unknown"
	}
	return typ, queue
}

// MiddlewareOptions configure Middleware.
type MiddlewareOptions struct {
	Metrics    *Metrics
	Tracer     trace.TracerProvider
	Propagator propagation.TextMapPropagator
	Logger     *slog.Logger
	// Cancels, when set, is asked whether a retried task was cancelled on
	// request (DELETE of an active task); such a task is not run again.
	Cancels CancelChecker
	// Attempts, when set, is given every attempt's record for the task's
	// history (it must not block).
	Attempts func(store.Attempt)
	// Worker names this process in attempt records (its host name).
	Worker string
}

// Middleware continues the trace carried in the task's headers in a
// CONSUMER span "process <queue>" (its parent is the producer span, so one
// trace runs from the HTTP request to the task's end, and it also links to
// it as the messaging conventions recommend), records metrics and logs the
// outcome with the trace IDs.
func Middleware(o MiddlewareOptions) asynq.MiddlewareFunc {
	if o.Tracer == nil {
		o.Tracer = noop.NewTracerProvider()
	}
	if o.Propagator == nil {
		o.Propagator = propagation.TraceContext{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	mw := &middleware{MiddlewareOptions: o, tracer: o.Tracer.Tracer("taskstack/internal/worker"), names: newProcessNames(),
		consumer: trace.WithSpanKind(trace.SpanKindConsumer)}
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			return mw.process(ctx, t, next)
		})
	}
}

// middleware is Middleware's state, shared by every task.
type middleware struct {
	MiddlewareOptions
	tracer   trace.Tracer
	names    processNames
	consumer trace.SpanStartOption
}

// run is one attempt at a task, as asynq's context describes it.
type run struct {
	queue, id         string
	retried, maxRetry int
	start, end        time.Time
	ser               *series
}

func (mw *middleware) process(ctx context.Context, t *asynq.Task, next asynq.Handler) error {
	r := run{start: time.Now()}
	r.queue, _ = asynq.GetQueueName(ctx)
	r.id, _ = asynq.GetTaskID(ctx)
	r.retried, _ = asynq.GetRetryCount(ctx)
	r.maxRetry, _ = asynq.GetMaxRetry(ctx)
	r.ser = mw.Metrics.series(t.Type(), r.queue)

	ctx, span := mw.startSpan(ctx, t, &r)
	defer span.End()
	if at, ok := tasks.EnqueuedAt(t.Headers()); ok {
		telemetry.ObserveWithExemplar(ctx, r.ser.wait, max(0, r.start.Sub(at).Seconds()))
	}
	// Retries wait for their back-off by design: only first attempts say
	// how long the queue kept a task waiting.
	if due, ok := tasks.DueAt(t.Headers()); ok && r.retried == 0 {
		telemetry.ObserveWithExemplar(ctx, r.ser.delay, max(0, r.start.Sub(due).Seconds()))
	}
	err := mw.handle(ctx, t, &r, next)
	r.end = time.Now()
	telemetry.ObserveWithExemplar(ctx, r.ser.duration, r.end.Sub(r.start).Seconds())
	if mw.Attempts != nil && t.Type() != tasks.TypeCanary {
		a := store.Attempt{Queue: r.queue, TaskID: r.id, N: r.retried + 1, StartedAt: r.start, FinishedAt: r.end, Worker: mw.Worker}
		if err != nil {
			a.Error = err.Error()
		}
		mw.Attempts(a)
	}
	mw.outcome(ctx, span, t, &r, err)
	return err
}

// startSpan continues the trace of the task's headers in its CONSUMER
// span. Attributes and the link are built for a recorded span only: at 10%
// sampling nine tasks in ten would build and drop them. (The sampler
// decides on the name, kind and parent, as the parent-based samplers of
// the docs do.)
func (mw *middleware) startSpan(ctx context.Context, t *asynq.Task, r *run) (context.Context, trace.Span) {
	parent := mw.Propagator.Extract(ctx, propagation.MapCarrier(t.Headers()))
	ctx, span := mw.tracer.Start(parent, mw.names.name(r.queue), mw.consumer)
	if span.IsRecording() {
		span.SetAttributes(
			semconv.MessagingSystemKey.String(store.MessagingSystem),
			semconv.MessagingOperationName("process"),
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingDestinationName(r.queue),
			semconv.MessagingMessageID(r.id),
			attribute.String("taskstack.task.type", t.Type()),
			attribute.Int("taskstack.task.retry_count", r.retried),
			attribute.Int("taskstack.task.max_retry", r.maxRetry),
		)
		if sc := trace.SpanContextFromContext(parent); sc.IsValid() {
			span.AddLink(trace.Link{SpanContext: sc})
		}
	}
	return ctx, span
}

// handle runs the task, unless it is a retry of a task cancelled through
// the API: asynq records the cancellation as an ordinary failure and
// retries it; it ends here for good.
func (mw *middleware) handle(ctx context.Context, t *asynq.Task, r *run, next asynq.Handler) error {
	if r.retried > 0 && mw.Cancels != nil {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		cancelled, _ := mw.Cancels.CancelRequested(cctx, r.queue, r.id)
		cancel()
		if cancelled {
			return fmt.Errorf("cancelled on request: %w", asynq.SkipRetry)
		}
	}
	// Deferred: asynq recovers a handler's panic above us.
	r.ser.inFlight.Inc()
	defer r.ser.inFlight.Dec()
	return next.ProcessTask(ctx, t)
}

// outcome counts the attempt's result, marks a failed span and logs it.
func (mw *middleware) outcome(ctx context.Context, span trace.Span, t *asynq.Task, r *run, err error) {
	attrs := func() []any {
		return []any{
			slog.String("task_id", r.id), slog.String("type", t.Type()), slog.String("queue", r.queue),
			slog.Int("retried", r.retried), slog.Duration("duration", r.end.Sub(r.start)),
		}
	}
	if err != nil {
		r.ser.failure.Inc()
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(semconv.ErrorTypeKey.String(errorType(ctx, err)))
		final := r.retried >= r.maxRetry || errors.Is(err, asynq.SkipRetry)
		mw.Logger.WarnContext(ctx, "task failed", append(attrs(), slog.Bool("final", final), slog.Any("err", err))...)
		return
	}
	r.ser.success.Inc()
	if mw.Logger.Enabled(ctx, slog.LevelDebug) {
		mw.Logger.DebugContext(ctx, "task done", attrs()...)
	}
}

// processNames are "process <queue>" for the catalogue's queues, built
// once.
type processNames map[string]string

func newProcessNames() processNames {
	n := processNames{}
	for _, q := range tasks.Queues() {
		n[q] = "process " + q
	}
	return n
}

func (n processNames) name(queue string) string {
	if s, ok := n[queue]; ok {
		return s
	}
	return "process " + queue
}

// errorType is a low-cardinality error.type value.
func errorType(ctx context.Context, err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(context.Cause(ctx), context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, asynq.SkipRetry):
		return "permanent"
	}
	// The semantic conventions' fallback: bounded, unlike error messages.
	return "_OTHER"
}

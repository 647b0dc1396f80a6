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
	tracer, log, m := o.Tracer.Tracer("taskstack/internal/worker"), o.Logger, o.Metrics
	spanNames, consumerKind := newProcessNames(), trace.WithSpanKind(trace.SpanKindConsumer)
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			start := time.Now()
			queue, _ := asynq.GetQueueName(ctx)
			id, _ := asynq.GetTaskID(ctx)
			retried, _ := asynq.GetRetryCount(ctx)
			maxRetry, _ := asynq.GetMaxRetry(ctx)
			ser := m.series(t.Type(), queue)

			parent := o.Propagator.Extract(ctx, propagation.MapCarrier(t.Headers()))
			// Attributes and the link are built for a recorded span only:
			// at 10% sampling nine tasks in ten would build and drop them.
			// (The sampler decides on the name, kind and parent, as the
			// parent-based samplers of the docs do.)
			ctx, span := tracer.Start(parent, spanNames.name(queue), consumerKind)
			defer span.End()
			if span.IsRecording() {
				span.SetAttributes(
					semconv.MessagingSystemKey.String(store.MessagingSystem),
					semconv.MessagingOperationName("process"),
					semconv.MessagingOperationTypeProcess,
					semconv.MessagingDestinationName(queue),
					semconv.MessagingMessageID(id),
					attribute.String("taskstack.task.type", t.Type()),
					attribute.Int("taskstack.task.retry_count", retried),
					attribute.Int("taskstack.task.max_retry", maxRetry),
				)
				if sc := trace.SpanContextFromContext(parent); sc.IsValid() {
					span.AddLink(trace.Link{SpanContext: sc})
				}
			}

			if at, ok := tasks.EnqueuedAt(t.Headers()); ok {
				telemetry.ObserveWithExemplar(ctx, ser.wait, max(0, start.Sub(at).Seconds()))
			}
			// Retries wait for their back-off by design: only first
			// attempts say how long the queue kept a task waiting.
			if due, ok := tasks.DueAt(t.Headers()); ok && retried == 0 {
				telemetry.ObserveWithExemplar(ctx, ser.delay, max(0, start.Sub(due).Seconds()))
			}
			err := func() error {
				// Cancelled through the API: asynq records the cancellation as
				// an ordinary failure and retries it; end it here for good.
				if retried > 0 && o.Cancels != nil {
					cctx, cancel := context.WithTimeout(ctx, time.Second)
					cancelled, _ := o.Cancels.CancelRequested(cctx, queue, id)
					cancel()
					if cancelled {
						return fmt.Errorf("cancelled on request: %w", asynq.SkipRetry)
					}
				}
				// Deferred: asynq recovers a handler's panic above us.
				ser.inFlight.Inc()
				defer ser.inFlight.Dec()
				return next.ProcessTask(ctx, t)
			}()
			end := time.Now()
			elapsed := end.Sub(start)
			telemetry.ObserveWithExemplar(ctx, ser.duration, elapsed.Seconds())
			if o.Attempts != nil && t.Type() != tasks.TypeCanary {
				a := store.Attempt{Queue: queue, TaskID: id, N: retried + 1, StartedAt: start, FinishedAt: end, Worker: o.Worker}
				if err != nil {
					a.Error = err.Error()
				}
				o.Attempts(a)
			}

			attrs := func() []any {
				return []any{
					slog.String("task_id", id), slog.String("type", t.Type()), slog.String("queue", queue),
					slog.Int("retried", retried), slog.Duration("duration", elapsed),
				}
			}
			if err != nil {
				ser.failure.Inc()
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
				span.SetAttributes(semconv.ErrorTypeKey.String(errorType(ctx, err)))
				final := retried >= maxRetry || errors.Is(err, asynq.SkipRetry)
				log.WarnContext(ctx, "task failed", append(attrs(), slog.Bool("final", final), slog.Any("err", err))...)
				return err
			}
			ser.success.Inc()
			if log.Enabled(ctx, slog.LevelDebug) {
				log.DebugContext(ctx, "task done", attrs()...)
			}
			return nil
		})
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

package tasks

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Header keys stored with every task (and restored by asynq on each retry).
// The W3C trace context travels under its own keys ("traceparent", ...).
const (
	HeaderEnqueuedAt = "taskstack-enqueued-at"
)

// MessagingSystem is the messaging.system attribute of our spans.
const MessagingSystem = "asynq"

// EnqueuedAt reads the enqueue time from a task's headers.
func EnqueuedAt(headers map[string]string) (time.Time, bool) {
	v, ok := headers[HeaderEnqueuedAt]
	if !ok {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, n), true
}

// Enqueuer validates requests against the catalogue and puts them on their
// queue inside a PRODUCER span whose context goes into the task's headers.
type Enqueuer struct {
	client    *asynq.Client
	catalogue *Catalogue
	tracer    trace.Tracer
	retention time.Duration
	now       func() time.Time
}

// NewEnqueuer returns an Enqueuer. tp may be nil for the global provider.
func NewEnqueuer(client *asynq.Client, cat *Catalogue, tp trace.TracerProvider, retention time.Duration) *Enqueuer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return &Enqueuer{
		client:    client,
		catalogue: cat,
		tracer:    tp.Tracer("taskstack/internal/tasks"),
		retention: retention,
		now:       time.Now,
	}
}

// Catalogue returns the catalogue requests are validated against.
func (e *Enqueuer) Catalogue() *Catalogue { return e.catalogue }

// Prepare validates a request without enqueuing it.
func (e *Enqueuer) Prepare(r Request) (Prepared, error) {
	return e.catalogue.Prepare(r, e.retention)
}

// Enqueue validates r and enqueues it. A *ValidationError means the request
// was refused and nothing was enqueued.
func (e *Enqueuer) Enqueue(ctx context.Context, r Request) (*asynq.TaskInfo, error) {
	p, err := e.Prepare(r)
	if err != nil {
		return nil, err
	}
	return e.EnqueuePrepared(ctx, p)
}

// EnqueuePrepared enqueues an already validated request.
func (e *Enqueuer) EnqueuePrepared(ctx context.Context, p Prepared) (*asynq.TaskInfo, error) {
	ctx, span := e.tracer.Start(ctx, "send "+p.Queue,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			semconv.MessagingSystemKey.String(MessagingSystem),
			semconv.MessagingOperationName("send"),
			semconv.MessagingOperationTypeSend,
			semconv.MessagingDestinationName(p.Queue),
			attribute.String("taskstack.task.type", p.Spec.Type),
		))
	defer span.End()

	headers := map[string]string{HeaderEnqueuedAt: strconv.FormatInt(e.now().UnixNano(), 10)}
	otel.GetTextMapPropagator().Inject(ctx, propagation.MapCarrier(headers))
	task := asynq.NewTaskWithHeaders(p.Spec.Type, p.Payload, headers, p.Options...)
	info, err := e.client.EnqueueContext(ctx, task)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "enqueue failed")
		span.SetAttributes(semconv.ErrorTypeKey.String(fmt.Sprintf("%T", err)))
		return nil, fmt.Errorf("enqueue %s on %s: %w", p.Spec.Type, p.Queue, err)
	}
	span.SetAttributes(semconv.MessagingMessageID(info.ID))
	return info, nil
}

// CancelKey is the Redis key marking a task as cancelled on request, so the
// worker does not retry it after its context is cancelled.
func CancelKey(id string) string { return "taskstack:cancelled:" + id }

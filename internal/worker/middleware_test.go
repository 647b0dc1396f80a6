package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"taskstack/internal/store"
	"taskstack/internal/tasks"
	"taskstack/internal/testsupport"
	"taskstack/internal/worker"
)

// TestTraceContinuation: the consumer span continues the trace in the
// task's headers: same trace ID, the producer span as parent, a link to it,
// the messaging attributes, and the error recorded when the handler fails.
func TestTraceContinuation(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	m, err := worker.NewMetrics(prometheus.NewRegistry(), []string{tasks.TypeEcho}, []string{"high"})
	if err != nil {
		t.Fatal(err)
	}
	mw := worker.Middleware(worker.MiddlewareOptions{Metrics: m, Tracer: tp, Propagator: propagation.TraceContext{}})
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	task := asynq.NewTaskWithHeaders(tasks.TypeEcho, nil, map[string]string{
		"traceparent":          "00-" + traceID + "-" + parentID + "-01",
		tasks.HeaderEnqueuedAt: strconv.FormatInt(time.Now().Add(-time.Second).UnixNano(), 10),
	})
	var handlerSpan trace.SpanContext
	h := mw(asynq.HandlerFunc(func(ctx context.Context, _ *asynq.Task) error {
		handlerSpan = trace.SpanContextFromContext(ctx)
		return errors.New("boom")
	}))
	if err := h.ProcessTask(taskContext(t, "high", "id-1", 0, 3), task); err == nil {
		t.Fatal("the handler's error must come back")
	}
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.Name() != "process high" || s.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("span %q kind %v, want \"process high\" CONSUMER", s.Name(), s.SpanKind())
	}
	if s.SpanContext().TraceID().String() != traceID || s.Parent().SpanID().String() != parentID {
		t.Errorf("span trace %s parent %s, want the producer's %s/%s", s.SpanContext().TraceID(), s.Parent().SpanID(), traceID, parentID)
	}
	if len(s.Links()) != 1 || s.Links()[0].SpanContext.SpanID().String() != parentID {
		t.Errorf("links %v, want one link to the producer span", s.Links())
	}
	if handlerSpan.SpanID() != s.SpanContext().SpanID() {
		t.Error("the handler does not run inside the consumer span")
	}
	attrs := map[string]string{}
	for _, a := range s.Attributes() {
		attrs[string(a.Key)] = a.Value.String()
	}
	for k, v := range map[string]string{
		"messaging.system": "asynq", "messaging.operation.name": "process", "messaging.operation.type": "process",
		"messaging.destination.name": "high", "messaging.message.id": "id-1", "taskstack.task.type": tasks.TypeEcho,
		"taskstack.task.retry_count": "0", "taskstack.task.max_retry": "3", "error.type": "_OTHER",
	} {
		if attrs[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, attrs[k], v)
		}
	}
	if s.Status().Code != codes.Error || len(s.Events()) == 0 {
		t.Errorf("status %v, %d events: want Error with the exception recorded", s.Status(), len(s.Events()))
	}
}

// taskContext is the context asynq gives a handler.
func taskContext(t *testing.T, queue, id string, retried, maxRetry int) context.Context {
	t.Helper()
	// asynq fills these from the task message; a server is the only way to
	// get them, so run one task through a real one on a real Redis.
	r := testsupport.StartRedis(t)
	rc := r.Client(t)
	got := make(chan context.Context, 1)
	srv := asynq.NewServerFromRedisClient(rc, asynq.Config{Queues: map[string]int{queue: 1}, TaskCheckInterval: 10 * time.Millisecond, LogLevel: asynq.ErrorLevel})
	mux := asynq.NewServeMux()
	mux.HandleFunc("probe", func(ctx context.Context, _ *asynq.Task) error {
		got <- context.WithoutCancel(ctx)
		return nil
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	c := asynq.NewClientFromRedisClient(rc)
	if _, err := c.Enqueue(asynq.NewTask("probe", nil), asynq.Queue(queue), asynq.TaskID(id), asynq.MaxRetry(maxRetry)); err != nil {
		t.Fatal(err)
	}
	select {
	case ctx := <-got:
		if retried != 0 {
			t.Fatal("taskContext only makes first attempts")
		}
		return ctx
	case <-time.After(10 * time.Second):
		t.Fatal("the probe task did not run")
	}
	return nil
}

// TestCancelledTaskIsNotRetried: a task cancelled through the store while
// it runs fails its attempt (asynq counts a cancellation as a failure and
// schedules a retry, which the worker makes immediate), and the retry ends
// at once without running the handler again.
func TestCancelledTaskIsNotRetried(t *testing.T) {
	t.Parallel()
	b := setup(t, tasks.NewCatalogue())
	// asynq's own back-off (15 s at least): a cancelled task must not wait
	// for it.
	b.start(t, worker.Options{Concurrency: 2, Cancels: b.store})
	id := b.enqueue(t, tasks.Request{Type: tasks.TypeEcho, Payload: json.RawMessage(`{"arg":"x","sleep":"5m"}`), Queue: "high", MaxRetry: new(3)})
	b.waitState(t, "high", id, asynq.TaskStateActive)
	d, err := b.store.Delete(context.Background(), "high", id)
	if err != nil || d != store.CancelRequested {
		t.Fatalf("Delete of an active task = %v, %v; want CancelRequested", d, err)
	}
	// A just-started worker may not have subscribed to asynq's cancel
	// channel yet: send the cancellation again while the task runs. Only
	// the message: the mark is set, and a second Delete could find the
	// task already moved to retry, and delete it.
	var last asynq.TaskState
	testsupport.Eventually(t, 12*time.Second, "the cancelled task archived (before any back-off)", func() bool {
		ti, err := b.insp.GetTaskInfo("high", id)
		if err != nil {
			t.Fatalf("task %s: %v", id, err)
		}
		if ti.State != last {
			last = ti.State
			t.Logf("task %s: %v, retried %d, %q", id, ti.State, ti.Retried, ti.LastErr)
		}
		if ti.State == asynq.TaskStateActive {
			_ = b.insp.CancelProcessing(id)
			time.Sleep(100 * time.Millisecond)
		}
		return ti.State == asynq.TaskStateArchived
	})
	ti, _ := b.insp.GetTaskInfo("high", id)
	if !strings.Contains(ti.LastErr, "cancelled on request") || ti.Retried < 1 {
		t.Errorf("archived after %d retries with %q; want the retry ended as cancelled on request", ti.Retried, ti.LastErr)
	}
	// The handler ran once: one attempt's worth of duration samples for
	// the canceled run, and the retry never reached it (no success).
	if n, _ := b.metric("taskstack_tasks_processed_total", map[string]string{"type": tasks.TypeEcho, "queue": "high", "outcome": "success"}); n != 0 {
		t.Errorf("%v successes of a cancelled task", n)
	}
}

// TestFirstAttemptIgnoresTheCancelMark: only a retry asks whether its task
// was cancelled (a first attempt cannot have been: Delete removes a task
// that has not run), so a first attempt runs whatever the store says, and
// costs no Redis round trip.
func TestFirstAttemptIgnoresTheCancelMark(t *testing.T) {
	t.Parallel()
	b := setup(t, tasks.NewCatalogue())
	b.start(t, worker.Options{Concurrency: 1})
	id := b.enqueue(t, tasks.Request{Type: tasks.TypeEcho, Payload: json.RawMessage(`{"arg":"x","sleep":"5m"}`), Queue: "high", MaxRetry: new(3)})
	b.waitState(t, "high", id, asynq.TaskStateActive)
	if d, err := b.store.Delete(context.Background(), "high", id); err != nil || d != store.CancelRequested {
		t.Fatalf("Delete of an active task = %v, %v; want CancelRequested", d, err)
	}
	if marked, err := b.store.CancelRequested(context.Background(), "high", id); err != nil || !marked {
		t.Fatalf("cancel mark: %v, %v", marked, err)
	}
	m, err := worker.NewMetrics(prometheus.NewRegistry(), []string{tasks.TypeEcho}, []string{"high"})
	if err != nil {
		t.Fatal(err)
	}
	ran := false
	h := worker.Middleware(worker.MiddlewareOptions{Metrics: m, Cancels: b.store})(asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
		ran = true
		return nil
	}))
	// The same task ID, as a first attempt.
	if err := h.ProcessTask(taskContext(t, "high", id, 0, 3), asynq.NewTask(tasks.TypeEcho, nil)); err != nil || !ran {
		t.Errorf("a first attempt of a task marked cancelled: ran %v, err %v; want it run", ran, err)
	}
}

func TestMiddlewareWithoutCancelsRunsRetries(t *testing.T) {
	t.Parallel()
	m, err := worker.NewMetrics(prometheus.NewRegistry(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ran := false
	h := worker.Middleware(worker.MiddlewareOptions{Metrics: m, Logger: slog.New(slog.DiscardHandler)})(asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
		ran = true
		return nil
	}))
	if err := h.ProcessTask(context.Background(), asynq.NewTask("x", nil)); err != nil || !ran {
		t.Errorf("ran %v, err %v", ran, err)
	}
}

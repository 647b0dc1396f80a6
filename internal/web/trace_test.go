package web_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"taskstack/internal/redisconn"
	"taskstack/internal/tasks"
	"taskstack/internal/telemetry"
	"taskstack/internal/testsupport"
	"taskstack/internal/web"
	"taskstack/internal/worker"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestOneTraceFromRequestToTask runs the app and a worker in one process
// with an in-memory span recorder: the HTTP server span, the producer span
// and the consumer span must share one trace, with the messaging attributes.
func TestOneTraceFromRequestToTask(t *testing.T) {
	t.Parallel()
	prop := telemetry.Propagator()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })

	r := testsupport.StartRedis(t)
	var logs syncBuffer
	log := telemetry.NewLogger(&logs, "json", slog.LevelDebug)
	rc := r.Client(t)
	if err := redisconn.Instrument(rc, tp); err != nil {
		t.Fatal(err)
	}
	app, _ := newApp(t, rc, web.Options{Logger: log, Tracer: tp, Propagator: prop})
	srv := serve(t, app)
	w, err := worker.New(worker.Options{
		Queues: map[string]int{"high": 1, "low": 1}, Concurrency: 2, ShutdownTimeout: 5 * time.Second, TaskCheckInterval: 10 * time.Millisecond,
		Redis:      r.Client(t),
		Catalogue:  tasks.NewCatalogue(),
		Logger:     log,
		Registry:   prometheus.NewRegistry(),
		Tracer:     tp,
		Propagator: prop,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)

	post := func(body string) string {
		resp, err := testsupport.HTTPClient().Post(srv.URL+"/api/v1/tasks", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("status %d", resp.StatusCode)
		}
		return strings.TrimPrefix(resp.Header.Get("Location"), "/api/v1/queues/")
	}
	okLoc := post(`{"type":"demo:echo","payload":{"arg":"traced","sleep":"0s"},"queue":"high"}`)
	failLoc := post(`{"type":"demo:fail","payload":{"message":"boom"},"queue":"low"}`)
	okID := okLoc[strings.LastIndex(okLoc, "/")+1:]
	failID := failLoc[strings.LastIndex(failLoc, "/")+1:]

	var spans []sdktrace.ReadOnlySpan
	find := func(name, id string) sdktrace.ReadOnlySpan {
		for _, s := range spans {
			if s.Name() == name && (id == "" || attr(s, "messaging.message.id") == id) {
				return s
			}
		}
		return nil
	}
	testsupport.Eventually(t, 15*time.Second, "both process spans", func() bool {
		spans = rec.Ended()
		return find("process high", okID) != nil && find("process low", failID) != nil
	})

	server := find("POST /api/v1/tasks", "")
	producer := find("send high", okID)
	consumer := find("process high", okID)
	if server == nil || producer == nil {
		t.Fatalf("missing server or producer span; got %v", names(spans))
	}
	traceID := server.SpanContext().TraceID()
	for _, s := range []sdktrace.ReadOnlySpan{producer, consumer} {
		if s.SpanContext().TraceID() != traceID {
			t.Errorf("%s is in trace %s, want the request's %s", s.Name(), s.SpanContext().TraceID(), traceID)
		}
	}
	if server.SpanKind() != trace.SpanKindServer || producer.SpanKind() != trace.SpanKindProducer || consumer.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("kinds: server %v producer %v consumer %v", server.SpanKind(), producer.SpanKind(), consumer.SpanKind())
	}
	if consumer.Parent().SpanID() != producer.SpanContext().SpanID() {
		t.Error("the consumer span's parent must be the producer span")
	}
	if len(consumer.Links()) != 1 || consumer.Links()[0].SpanContext.SpanID() != producer.SpanContext().SpanID() {
		t.Errorf("the consumer span must link to the producer span: %+v", consumer.Links())
	}
	wantAttrs := map[string]string{
		"messaging.system": "asynq", "messaging.destination.name": "high",
		"messaging.message.id": okID,
	}
	for k, v := range wantAttrs {
		if got := attr(producer, k); got != v {
			t.Errorf("producer %s = %q, want %q", k, got, v)
		}
		if got := attr(consumer, k); got != v {
			t.Errorf("consumer %s = %q, want %q", k, got, v)
		}
	}
	if attr(producer, "messaging.operation.type") != "send" || attr(consumer, "messaging.operation.type") != "process" {
		t.Error("messaging.operation.type must be send / process")
	}
	if attr(consumer, "taskstack.task.type") != tasks.TypeEcho || attr(consumer, "taskstack.task.retry_count") != "0" {
		t.Errorf("consumer task attributes: %v", consumer.Attributes())
	}
	if consumer.Status().Code == codes.Error {
		t.Error("a successful task must not have an error status")
	}

	failed := find("process low", failID)
	if failed.Status().Code != codes.Error || attr(failed, "error.type") == "" {
		t.Errorf("failing task: status %v error.type %q", failed.Status(), attr(failed, "error.type"))
	}
	if len(failed.Events()) == 0 || failed.Events()[0].Name != "exception" {
		t.Error("failing task must record the error as an exception event")
	}
	// Redis calls made for the request are traced as children of the trace.
	redisSpans := 0
	for _, s := range spans {
		if s.SpanContext().TraceID() == traceID && s.SpanKind() == trace.SpanKindClient {
			redisSpans++
		}
	}
	if redisSpans == 0 {
		t.Error("no Redis client span in the request's trace")
	}
	// The worker's log line for the failure carries its trace.
	failTrace := failed.SpanContext().TraceID().String()
	testsupport.Eventually(t, 5*time.Second, "failure log line with trace_id", func() bool {
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, `"task failed"`) && strings.Contains(line, `"trace_id":"`+failTrace+`"`) {
				return true
			}
		}
		return false
	})
	if _, err := asynq.NewInspectorFromRedisClient(r.Client(t)).GetTaskInfo("low", failID); err != nil {
		t.Errorf("failed task should be archived, not lost: %v", err)
	}
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			if kv.Value.Type() == attribute.INT64 {
				return kv.Value.String()
			}
			return kv.Value.AsString()
		}
	}
	return ""
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

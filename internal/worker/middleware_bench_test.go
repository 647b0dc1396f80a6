package worker_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"taskstack/internal/tasks"
	"taskstack/internal/worker"
)

// BenchmarkMiddleware is the per-task cost of the worker's middleware
// (consumer span continuing the producer's trace, queue-wait and duration
// histograms with exemplars, in-flight gauge, outcome counter, log level
// check) around a handler that does nothing, compared with the bare
// handler. One task in ten carries a sampled traceparent, like production
// at 10% sampling; "tracing=100%" samples every task.
func BenchmarkMiddleware(b *testing.B) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	nop := asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })
	log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	at := strconv.FormatInt(time.Now().UnixNano(), 10)
	task := func(sampled bool) *asynq.Task {
		flags := "00"
		if sampled {
			flags = "01"
		}
		return asynq.NewTaskWithHeaders(tasks.TypeEcho, []byte(`{"arg":"x","sleep":"0s"}`), map[string]string{
			tasks.HeaderEnqueuedAt: at,
			"traceparent":          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-" + flags,
		})
	}
	unsampled, sampled := task(false), task(true)
	sdk := func() trace.TracerProvider {
		return sdktrace.NewTracerProvider(
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.1))),
			sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	}
	for _, bc := range []struct {
		name        string
		tp          trace.TracerProvider
		bare        bool
		sampleEvery int // one task in sampleEvery is sampled; 0: none
	}{
		{name: "bare-handler", bare: true},
		{name: "tracing=off", tp: noop.NewTracerProvider()},
		{name: "tracing=10%", tp: sdk(), sampleEvery: 10},
		{name: "tracing=100%", tp: sdk(), sampleEvery: 1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := asynq.Handler(nop)
			if !bc.bare {
				m := worker.NewMetrics(prometheus.NewRegistry(), tasks.NewCatalogue().Types(), tasks.Queues())
				h = worker.Middleware(m, bc.tp, log)(nop)
			}
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				t := unsampled
				if bc.sampleEvery > 0 && i%bc.sampleEvery == 0 {
					t = sampled
				}
				i++
				if err := h.ProcessTask(ctx, t); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

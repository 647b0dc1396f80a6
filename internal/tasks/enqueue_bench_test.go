package tasks_test

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"taskstack/internal/tasks"
	"taskstack/internal/testsupport"
)

// BenchmarkEnqueue puts demo:echo tasks on a real redis-server through the
// Enqueuer (producer span, trace and enqueue-time headers) and, as the
// baseline, through a bare asynq.Client with the same options: from one
// goroutine and from 8 (asynq's anchors: ~10k/s and ~55k/s here).
func BenchmarkEnqueue(b *testing.B) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	r := testsupport.StartRedis(b)
	rc := r.Client(b)
	client := asynq.NewClientFromRedisClient(rc)
	ctx := context.Background()

	run := func(b *testing.B, enqueue func() error) {
		b.Run("serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := enqueue(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("parallel-8", func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(4) // GOMAXPROCS=2 here: 8 goroutines
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := enqueue(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		if err := rc.FlushAll(ctx).Err(); err != nil {
			b.Fatal(err)
		}
	}

	for _, tc := range []struct {
		name string
		tp   trace.TracerProvider
	}{
		{"taskstack/tracing=off", noop.NewTracerProvider()},
		{"taskstack/tracing=10%", sdktrace.NewTracerProvider(
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.1))),
			sdktrace.WithBatcher(tracetest.NewNoopExporter()))},
	} {
		enq := tasks.NewEnqueuer(client, tasks.NewCatalogue(), tc.tp, time.Hour)
		p, err := enq.Prepare(tasks.Request{Type: tasks.TypeEcho, Payload: []byte(`{"arg":"x","sleep":"0s"}`), Queue: tasks.QueueHigh})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			run(b, func() error { _, err := enq.EnqueuePrepared(ctx, p); return err })
		})
	}
	b.Run("raw-asynq", func(b *testing.B) {
		opts := []asynq.Option{asynq.Queue(tasks.QueueHigh), asynq.Timeout(11 * time.Minute), asynq.MaxRetry(3), asynq.Retention(time.Hour)}
		payload := []byte(`{"arg":"x","sleep":"0s"}`)
		run(b, func() error {
			_, err := client.EnqueueContext(ctx, asynq.NewTask(tasks.TypeEcho, payload, opts...))
			return err
		})
	})
}

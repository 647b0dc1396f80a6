package worker_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"taskstack/internal/store"
	"taskstack/internal/tasks"
	"taskstack/internal/testsupport"
	"taskstack/internal/worker"
)

// BenchmarkMiddleware is the per-task cost of the worker's middleware
// (consumer span continuing the producer's trace, queue-wait and duration
// histograms with exemplars, in-flight gauge, outcome counter, log level
// check) around a handler that does nothing, compared with the bare
// handler. One task in ten carries a sampled traceparent, like production
// at 10% sampling; "tracing=100%" samples every task.
func BenchmarkMiddleware(b *testing.B) {
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
		if sdk, ok := bc.tp.(*sdktrace.TracerProvider); ok {
			b.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
		}
		b.Run(bc.name, func(b *testing.B) {
			h := asynq.Handler(nop)
			if !bc.bare {
				m, err := worker.NewMetrics(prometheus.NewRegistry(), tasks.NewCatalogue().Types(), tasks.Queues())
				if err != nil {
					b.Fatal(err)
				}
				h = worker.Middleware(worker.MiddlewareOptions{Metrics: m, Tracer: bc.tp, Propagator: propagation.TraceContext{}, Logger: log})(nop)
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

// BenchmarkProcess runs the whole chain in one process against a real
// redis-server: 20,000 demo:echo tasks (sleep 0s) pre-enqueued on
// high/default/low, then one op is the time from starting the worker to the
// queues being empty. "taskstack" is worker.New with the default settings,
// JSON logs at info, metrics and tracing at 10% (spans dropped by a no-op
// exporter); "raw-asynq" is a bare asynq.Server with the same queues,
// concurrency and TaskCheckInterval and a handler doing demo:echo's work.
// Use it for profiles (-cpuprofile); `make bench` measures the binaries.
func BenchmarkProcess(b *testing.B) {
	const n = 20000
	r := testsupport.StartRedis(b)
	rc := r.Client(b)
	ctx := context.Background()
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.1))),
		sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() { _ = tp.Shutdown(ctx) })
	cfg := worker.Options{
		Queues: map[string]int{tasks.QueueHigh: 6, tasks.QueueDefault: 3, tasks.QueueLow: 1}, Servers: 1,
		Concurrency: 20, TaskCheckInterval: 10 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
	}
	client := asynq.NewClientFromRedisClient(rc)
	cat := tasks.NewCatalogue()
	st := store.New(store.Options{Redis: rc, Retention: time.Hour, Queues: tasks.Queues(), Tracer: tp, Propagator: propagation.TraceContext{}})
	payload := []byte(`{"arg":"x","sleep":"0s"}`)
	fill := func(b *testing.B, raw bool) {
		if err := rc.FlushAll(ctx).Err(); err != nil {
			b.Fatal(err)
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for i := next.Add(1) - 1; i < n; i = next.Add(1) - 1 {
					q := tasks.Queues()[i%3]
					var err error
					if raw {
						_, err = client.EnqueueContext(ctx, asynq.NewTask(tasks.TypeEcho, payload,
							asynq.Queue(q), asynq.Timeout(11*time.Minute), asynq.MaxRetry(3), asynq.Retention(time.Hour)))
					} else {
						var p tasks.Prepared
						if p, err = cat.Prepare(tasks.Request{Type: tasks.TypeEcho, Payload: payload, Queue: q}); err == nil {
							_, err = st.Enqueue(ctx, p)
						}
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	drain := func(b *testing.B) {
		for {
			var left int64
			for _, q := range tasks.Queues() {
				p, _ := rc.LLen(ctx, "asynq:{"+q+"}:pending").Result()
				a, _ := rc.LLen(ctx, "asynq:{"+q+"}:active").Result()
				left += p + a
			}
			if left == 0 {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	run := func(b *testing.B, raw bool, start func() (stop func())) {
		for b.Loop() {
			b.StopTimer()
			fill(b, raw)
			b.StartTimer()
			stop := start()
			drain(b)
			b.StopTimer()
			stop()
			b.StartTimer()
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tasks/s")
	}
	b.Run("taskstack", func(b *testing.B) {
		log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
		run(b, false, func() func() {
			o := cfg
			o.Redis, o.Catalogue, o.Cancels, o.Logger, o.Registry, o.Tracer, o.Propagator = rc, cat, st, log, prometheus.NewRegistry(), tp, propagation.TraceContext{}
			w, err := worker.New(o)
			if err != nil {
				b.Fatal(err)
			}
			if err := w.Start(); err != nil {
				b.Fatal(err)
			}
			return w.Shutdown
		})
	})
	b.Run("raw-asynq", func(b *testing.B) {
		mux := asynq.NewServeMux()
		mux.HandleFunc(tasks.TypeEcho, func(_ context.Context, t *asynq.Task) error {
			var p tasks.EchoPayload
			if err := json.Unmarshal(t.Payload(), &p); err != nil {
				return err
			}
			_, err := t.ResultWriter().Write([]byte(tasks.EchoResult(p.Arg)))
			return err
		})
		run(b, true, func() func() {
			s := asynq.NewServerFromRedisClient(rc, asynq.Config{Queues: cfg.Queues, Concurrency: cfg.Concurrency,
				TaskCheckInterval: cfg.TaskCheckInterval, ShutdownTimeout: cfg.ShutdownTimeout, LogLevel: asynq.WarnLevel})
			if err := s.Start(mux); err != nil {
				b.Fatal(err)
			}
			return s.Shutdown
		})
	})
}

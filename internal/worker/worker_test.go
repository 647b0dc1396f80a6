package worker_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"taskstack/internal/config"
	"taskstack/internal/tasks"
	"taskstack/internal/telemetry"
	"taskstack/internal/testsupport"
	"taskstack/internal/worker"
)

type bundle struct {
	rc   *redis.Client
	enq  *tasks.Enqueuer
	insp *asynq.Inspector
	reg  *prometheus.Registry
	log  *slog.Logger
}

func setup(t *testing.T) *bundle {
	t.Helper()
	r := testsupport.StartRedis(t)
	rc := r.Client(t)
	return &bundle{
		rc:   rc,
		enq:  tasks.NewEnqueuer(asynq.NewClientFromRedisClient(rc), tasks.NewCatalogue(), nil, time.Hour),
		insp: asynq.NewInspectorFromRedisClient(rc),
		reg:  prometheus.NewRegistry(),
		log:  telemetry.NewLogger(t.Output(), "text", slog.LevelInfo),
	}
}

func (b *bundle) start(t *testing.T, cfg config.Worker, cat worker.Catalogue) *worker.Worker {
	t.Helper()
	if cfg.TaskCheckInterval == 0 {
		cfg.TaskCheckInterval = 10 * time.Millisecond
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 5 * time.Second
	}
	w := worker.New(worker.Options{Config: cfg, Redis: b.rc, Catalogue: cat, Logger: b.log, Registry: b.reg})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	return w
}

func (b *bundle) enqueue(t *testing.T, typ, queue string, payload any) string {
	t.Helper()
	raw, _ := json.Marshal(payload)
	info, err := b.enq.Enqueue(context.Background(), tasks.Request{Type: typ, Queue: queue, Payload: raw})
	if err != nil {
		t.Fatal(err)
	}
	return info.ID
}

func TestEchoResult(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.start(t, config.Worker{Queues: map[string]int{"high": 6, "default": 3, "low": 1}, Concurrency: 4}, tasks.NewCatalogue())
	id := b.enqueue(t, tasks.TypeEcho, "default", tasks.EchoPayload{Arg: "world", Sleep: "0s"})
	var ti *asynq.TaskInfo
	testsupport.Eventually(t, 10*time.Second, "echo completed", func() bool {
		var err error
		ti, err = b.insp.GetTaskInfo("default", id)
		return err == nil && ti.State == asynq.TaskStateCompleted
	})
	if got := string(ti.Result); got != "prefix___world" {
		t.Errorf("result %q, want prefix___world", got)
	}
	if ti.Retention != time.Hour {
		t.Errorf("retention %s, want the configured 1h", ti.Retention)
	}
}

func TestEchoStopsWhenCancelled(t *testing.T) {
	t.Parallel()
	spec, _ := tasks.NewCatalogue().Lookup(tasks.TypeEcho)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- spec.Handler(ctx, asynq.NewTask(tasks.TypeEcho, []byte(`{"arg":"x","sleep":"10m"}`)))
	}()
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a cancelled echo must return an error so asynq does not mark it completed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("echo did not stop when its context was cancelled")
	}
}

// recorder is a catalogue whose one handler records the order tasks start in.
type recorder struct {
	mu    sync.Mutex
	order []string
}

func (r *recorder) Types() []string { return []string{"test:record"} }
func (r *recorder) Register(mux *asynq.ServeMux) {
	mux.HandleFunc("test:record", func(ctx context.Context, t *asynq.Task) error {
		q, _ := asynq.GetQueueName(ctx)
		r.mu.Lock()
		r.order = append(r.order, q)
		r.mu.Unlock()
		return nil
	})
}

func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.order...)
}

func prefill(t *testing.T, rc *redis.Client, counts map[string]int) {
	t.Helper()
	c := asynq.NewClientFromRedisClient(rc)
	// Interleave so that insertion order cannot explain the result.
	for i := 0; ; i++ {
		more := false
		for _, q := range []string{"low", "default", "high"} {
			if i < counts[q] {
				more = true
				if _, err := c.Enqueue(asynq.NewTask("test:record", nil), asynq.Queue(q)); err != nil {
					t.Fatal(err)
				}
			}
		}
		if !more {
			return
		}
	}
}

func TestStrictPriority(t *testing.T) {
	t.Parallel()
	b := setup(t)
	prefill(t, b.rc, map[string]int{"high": 20, "low": 20})
	rec := &recorder{}
	b.start(t, config.Worker{Queues: map[string]int{"high": 6, "default": 3, "low": 1}, StrictPriority: true, Concurrency: 1}, rec)
	testsupport.Eventually(t, 20*time.Second, "all 40 tasks", func() bool { return len(rec.snapshot()) == 40 })
	order := rec.snapshot()
	for i, q := range order {
		if (i < 20) != (q == "high") {
			t.Fatalf("task %d came from %s; every high task must start before any low task: %v", i, q, order)
		}
	}
}

func TestWeightedProgress(t *testing.T) {
	t.Parallel()
	b := setup(t)
	prefill(t, b.rc, map[string]int{"high": 200, "default": 200, "low": 200})
	rec := &recorder{}
	b.start(t, config.Worker{Queues: map[string]int{"high": 6, "default": 3, "low": 1}, Concurrency: 1}, rec)
	testsupport.Eventually(t, 20*time.Second, "100 tasks", func() bool { return len(rec.snapshot()) >= 100 })
	seen := map[string]int{}
	for _, q := range rec.snapshot()[:100] {
		seen[q]++
	}
	for _, q := range []string{"high", "default", "low"} {
		if seen[q] == 0 {
			t.Errorf("queue %s made no progress in weighted mode: %v", q, seen)
		}
	}
	if seen["high"] <= seen["low"] {
		t.Errorf("high (weight 6) should run more than low (weight 1): %v", seen)
	}
}

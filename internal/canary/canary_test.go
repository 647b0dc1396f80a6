package canary_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"taskstack/internal/canary"
	"taskstack/internal/store"
	"taskstack/internal/tasks"
	"taskstack/internal/testsupport"
)

func newStore(t *testing.T, r *testsupport.Redis) *store.Store {
	t.Helper()
	return store.New(store.Options{Redis: r.Client(t), Retention: time.Hour, Queues: tasks.Queues()})
}

func newProber(t *testing.T, st canary.Store, interval time.Duration, now func() time.Time) (*canary.Prober, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	p, err := canary.NewProber(canary.Options{
		Store: st, Catalogue: tasks.NewCatalogue(), Queues: tasks.Queues(), Interval: interval,
		Now: now, Logger: slog.New(slog.DiscardHandler), Registry: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, reg
}

// TestOneCanaryPerTickWhateverTheReplicas: three replicas tick the same
// tick at once; each queue gets exactly one canary task, with the tick's
// ID, on that queue, kept briefly, and the replicas' counters say one
// enqueued it and two were refused.
func TestOneCanaryPerTickWhateverTheReplicas(t *testing.T) {
	t.Parallel()
	r := testsupport.StartRedis(t)
	insp := asynq.NewInspectorFromRedisClient(r.Client(t))
	tick := time.Unix(1_800_000_000, 0)
	var regs []*prometheus.Registry
	var probers []*canary.Prober
	for range 3 {
		p, reg := newProber(t, newStore(t, r), 15*time.Second, nil)
		probers, regs = append(probers, p), append(regs, reg)
	}
	var wg sync.WaitGroup
	for _, p := range probers {
		wg.Go(func() { p.Tick(context.Background(), tick) })
	}
	testsupport.Within(t, 15*time.Second, "three replicas' ticks", wg.Wait)
	for _, q := range tasks.Queues() {
		pending, err := insp.ListPendingTasks(q)
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) != 1 {
			t.Fatalf("queue %s holds %d canaries, want 1", q, len(pending))
		}
		task := pending[0]
		if task.ID != canary.TaskID(q, tick) || task.Type != tasks.TypeCanary || task.MaxRetry != 0 {
			t.Errorf("queue %s: task %s %s max_retry %d; want %s %s max_retry 0", q, task.ID, task.Type, task.MaxRetry, canary.TaskID(q, tick), tasks.TypeCanary)
		}
		var enq, dup float64
		for _, reg := range regs {
			enq += probes(t, reg, q, canary.OutcomeEnqueued)
			dup += probes(t, reg, q, canary.OutcomeDuplicate)
		}
		if enq != 1 || dup != 2 {
			t.Errorf("queue %s: %v enqueued, %v duplicate; want 1 and 2", q, enq, dup)
		}
	}
	if want := "canary:high:1800000000"; canary.TaskID("high", tick) != want {
		t.Errorf("TaskID = %s, want %s", canary.TaskID("high", tick), want)
	}
}

func probes(t *testing.T, reg *prometheus.Registry, queue, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "taskstack_canary_probes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["queue"] == queue && l["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no taskstack_canary_probes_total{queue=%q,outcome=%q}", queue, outcome)
	return 0
}

// TestRetentionOutlivesTheTick: a completed canary is kept at least two
// intervals (so a replica a little late is still refused the tick) and at
// least 30s, never the store's day.
func TestRetentionOutlivesTheTick(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ interval, want time.Duration }{
		{time.Second, 30 * time.Second}, {15 * time.Second, 30 * time.Second}, {time.Minute, 2 * time.Minute},
	} {
		if got := canary.Retention(tt.interval); got != tt.want {
			t.Errorf("Retention(%s) = %s, want %s", tt.interval, got, tt.want)
		}
	}
}

// TestRunTicksOnTheEpochGrid: Run waits for the next multiple of the
// interval, so replicas started at different times tick together.
func TestRunTicksOnTheEpochGrid(t *testing.T) {
	t.Parallel()
	r := testsupport.StartRedis(t)
	insp := asynq.NewInspectorFromRedisClient(r.Client(t))
	p, reg := newProber(t, newStore(t, r), time.Second, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	testsupport.Eventually(t, 10*time.Second, "two ticks on every queue", func() bool {
		return probes(t, reg, "low", canary.OutcomeEnqueued) >= 2
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	pending, err := insp.ListPendingTasks("low")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range pending {
		unix := strings.TrimPrefix(task.ID, "canary:low:")
		if unix == task.ID || len(unix) != 10 {
			t.Errorf("task ID %s is not canary:low:<unix seconds>", task.ID)
		}
	}
	if len(pending) < 2 {
		t.Errorf("%d canaries on low after two ticks", len(pending))
	}
}

// failingStore refuses every enqueue.
type failingStore struct{}

func (failingStore) Enqueue(context.Context, tasks.Prepared) (store.Enqueued, error) {
	return store.Enqueued{}, errors.New("redis is down")
}

// TestEnqueueErrorsAreCountedAndLoggedOnce: an outage counts an error per
// queue and tick and is logged once, not at every tick.
func TestEnqueueErrorsAreCountedAndLoggedOnce(t *testing.T) {
	t.Parallel()
	logs := testsupport.NewLogBuffer(t)
	reg := prometheus.NewRegistry()
	p, err := canary.NewProber(canary.Options{
		Store: failingStore{}, Catalogue: tasks.NewCatalogue(), Queues: tasks.Queues(), Interval: time.Second,
		Logger: slog.New(slog.NewJSONHandler(logs, nil)), Registry: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		p.Tick(context.Background(), time.Unix(int64(1_800_000_000+i), 0))
	}
	if n := probes(t, reg, "default", canary.OutcomeError); n != 3 {
		t.Errorf("%v errors counted on default, want 3", n)
	}
	if n := len(logs.Lines("canary not enqueued")); n != 1 {
		t.Errorf("%d warnings for one outage, want 1", n)
	}
	if n := testutil.CollectAndCount(reg, "taskstack_canary_probes_total"); n != 9 {
		t.Errorf("%d probe series, want 9 (3 queues x 3 outcomes, created at start)", n)
	}
}

package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"taskstack/internal/store"
	"taskstack/internal/tasks"
	"taskstack/internal/telemetry"
	"taskstack/internal/testsupport"
	"taskstack/internal/worker"
)

type bundle struct {
	rc    *redis.Client
	store *store.Store
	cat   *tasks.Catalogue
	insp  *asynq.Inspector
	reg   *prometheus.Registry
	log   *slog.Logger
	logs  *testsupport.LogBuffer
}

func setup(t *testing.T, cat *tasks.Catalogue) *bundle {
	t.Helper()
	r := testsupport.StartRedis(t)
	rc := r.Client(t)
	logs := testsupport.NewLogBuffer(t)
	return &bundle{
		rc:    rc,
		store: store.New(store.Options{Redis: rc, Retention: time.Hour, Queues: tasks.Queues()}),
		cat:   cat,
		insp:  asynq.NewInspectorFromRedisClient(rc),
		reg:   prometheus.NewRegistry(),
		log:   telemetry.NewLogger(logs, "json", slog.LevelInfo),
		logs:  logs,
	}
}

// start runs a worker on every queue with o's settings filled in.
func (b *bundle) start(t *testing.T, o worker.Options) *worker.Worker {
	t.Helper()
	if o.Queues == nil {
		o.Queues = map[string]int{"high": 6, "default": 3, "low": 1}
	}
	if o.TaskCheckInterval == 0 {
		o.TaskCheckInterval = 10 * time.Millisecond
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 5 * time.Second
	}
	o.Concurrency = max(o.Concurrency, 1)
	o.Redis, o.Logger, o.Registry = b.rc, b.log, b.reg
	if o.Catalogue == nil {
		o.Catalogue = b.cat
	}
	w, err := worker.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	return w
}

func (b *bundle) enqueue(t *testing.T, req tasks.Request) string {
	t.Helper()
	p, err := b.cat.Prepare(req)
	if err != nil {
		t.Fatal(err)
	}
	e, err := b.store.Enqueue(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return e.ID
}

func (b *bundle) waitState(t *testing.T, queue, id string, state asynq.TaskState) *asynq.TaskInfo {
	t.Helper()
	var ti *asynq.TaskInfo
	testsupport.Eventually(t, 15*time.Second, fmt.Sprintf("task %s %s", id, state), func() bool {
		var err error
		ti, err = b.insp.GetTaskInfo(queue, id)
		return err == nil && ti.State == state
	})
	return ti
}

func TestEchoResult(t *testing.T) {
	t.Parallel()
	b := setup(t, tasks.NewCatalogue())
	b.start(t, worker.Options{Concurrency: 4})
	id := b.enqueue(t, tasks.Request{Type: tasks.TypeEcho, Payload: json.RawMessage(`{"arg":"world","sleep":"0s"}`)})
	ti := b.waitState(t, "default", id, asynq.TaskStateCompleted)
	if got := string(ti.Result); got != "prefix___world" {
		t.Errorf("result %q, want prefix___world", got)
	}
	if ti.Retention != time.Hour {
		t.Errorf("retention %s, want the store's 1h", ti.Retention)
	}
}

// flaky fails its first attempt and succeeds on the retry.
type flakyPayload struct {
	Key string `json:"key"`
}

func (*flakyPayload) Validate() error { return nil }

func TestOutcomeLabels(t *testing.T) {
	t.Parallel()
	var attempts sync.Map
	flaky := tasks.Define("test:flaky", tasks.Defaults{Queue: tasks.QueueHigh, Timeout: time.Minute, MaxRetry: 2},
		func(_ context.Context, p flakyPayload, job tasks.Job) error {
			n, _ := attempts.LoadOrStore(p.Key, new(atomic.Int32))
			if n.(*atomic.Int32).Add(1) == 1 {
				return errors.New("first attempt fails")
			}
			_, err := job.Result.Write([]byte("ok after " + fmt.Sprint(job.Retried) + " retry"))
			return err
		})
	b := setup(t, tasks.NewCatalogueOf(tasks.Echo, tasks.Fail, flaky))
	// Retry at once instead of asynq's back-off of tens of seconds.
	b.start(t, worker.Options{Concurrency: 2, RetryDelay: func(int, error, *asynq.Task) time.Duration { return 0 }})

	ok := b.enqueue(t, tasks.Request{Type: tasks.TypeEcho, Payload: json.RawMessage(`{"arg":"a","sleep":"0s"}`)})
	retried := b.enqueue(t, tasks.Request{Type: "test:flaky", Payload: json.RawMessage(`{"key":"k"}`)})
	dead := b.enqueue(t, tasks.Request{Type: tasks.TypeFail, Payload: json.RawMessage(`{"message":"boom"}`)})
	b.waitState(t, "default", ok, asynq.TaskStateCompleted)
	if ti := b.waitState(t, "high", retried, asynq.TaskStateCompleted); string(ti.Result) != "ok after 1 retry" {
		t.Errorf("flaky result %q", ti.Result)
	}
	b.waitState(t, "low", dead, asynq.TaskStateArchived)

	processed := func(typ, queue, outcome string) float64 {
		c, err := b.metric("taskstack_tasks_processed_total", map[string]string{"type": typ, "queue": queue, "outcome": outcome})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, c := range []struct {
		typ, queue, outcome string
		want                float64
	}{
		{tasks.TypeEcho, "default", "success", 1}, {tasks.TypeEcho, "default", "failure", 0},
		{"test:flaky", "high", "failure", 1}, {"test:flaky", "high", "success", 1},
		{tasks.TypeFail, "low", "failure", 1}, {tasks.TypeFail, "low", "success", 0},
	} {
		if got := processed(c.typ, c.queue, c.outcome); got != c.want {
			t.Errorf("taskstack_tasks_processed_total{type=%q,queue=%q,outcome=%q} = %v, want %v", c.typ, c.queue, c.outcome, got, c.want)
		}
	}
	// The final failure says so in its log line; the retried one does not.
	lines := b.logs.Lines(`"msg":"task failed"`)
	var final, notFinal int
	for _, l := range lines {
		switch {
		case strings.Contains(l, `"type":"demo:fail"`) && strings.Contains(l, `"final":true`):
			final++
		case strings.Contains(l, `"type":"test:flaky"`) && strings.Contains(l, `"final":false`):
			notFinal++
		}
	}
	if final != 1 || notFinal != 1 {
		t.Errorf("want one final and one retryable failure logged, got %d and %d:\n%s", final, notFinal, strings.Join(lines, "\n"))
	}
	for _, name := range []string{"taskstack_task_duration_seconds", "taskstack_task_queue_wait_seconds", "taskstack_task_start_delay_seconds"} {
		n, err := b.histogramCount(name, map[string]string{"type": tasks.TypeEcho, "queue": "default"})
		if err != nil || n != 1 {
			t.Errorf("%s count for demo:echo = %d (%v), want 1", name, n, err)
		}
	}
	// Two attempts of the flaky task: both ran and waited, but only the
	// first says how long the queue kept it (the retry waited its back-off).
	for name, want := range map[string]uint64{"taskstack_task_duration_seconds": 2, "taskstack_task_queue_wait_seconds": 2, "taskstack_task_start_delay_seconds": 1} {
		n, err := b.histogramCount(name, map[string]string{"type": "test:flaky", "queue": "high"})
		if err != nil || n != want {
			t.Errorf("%s count for test:flaky = %d (%v), want %d", name, n, err, want)
		}
	}
}

// metric reads one counter or gauge child from the registry.
func (b *bundle) metric(name string, labels map[string]string) (float64, error) {
	fams, err := b.reg.Gather()
	if err != nil {
		return 0, err
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if matches(m.GetLabel(), labels) {
				if m.Counter != nil {
					return m.GetCounter().GetValue(), nil
				}
				return m.GetGauge().GetValue(), nil
			}
		}
	}
	return 0, fmt.Errorf("no %s%v", name, labels)
}

func (b *bundle) histogramCount(name string, labels map[string]string) (uint64, error) {
	fams, err := b.reg.Gather()
	if err != nil {
		return 0, err
	}
	for _, f := range fams {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				if matches(m.GetLabel(), labels) {
					return m.GetHistogram().GetSampleCount(), nil
				}
			}
		}
	}
	return 0, fmt.Errorf("no %s%v", name, labels)
}

func TestMetricsArePrecreatedAndBounded(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	if _, err := worker.NewMetrics(reg, []string{tasks.TypeEcho}, []string{"high"}); err != nil {
		t.Fatal(err)
	}
	// Before any task ran: both outcomes exist at zero, so rates start at 0.
	if n := testutil.CollectAndCount(reg, "taskstack_tasks_processed_total"); n != 2 {
		t.Errorf("%d processed series before any task, want success and failure", n)
	}
	if _, err := worker.NewMetrics(reg, nil, nil); err == nil {
		t.Error("registering the metrics twice on one registry must fail, not panic")
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

// TestStrictPriority: with strict priority every high task starts before
// any low one. In weighted mode (high 6, low 1, one task at a time) each
// start picks high with probability 6/7, so the chance that 100 high tasks
// all come first by luck is (6/7)^100 ≈ 2e-7: a worker that ignores
// StrictPriority fails here, not 1 run in 20.
func TestStrictPriority(t *testing.T) {
	t.Parallel()
	const n = 100
	b := setup(t, nil)
	prefill(t, b.rc, map[string]int{"high": n, "low": n})
	rec := &recorder{}
	b.start(t, worker.Options{StrictPriority: true, Concurrency: 1, Catalogue: rec})
	testsupport.Eventually(t, 30*time.Second, fmt.Sprintf("all %d tasks", 2*n), func() bool { return len(rec.snapshot()) == 2*n })
	order := rec.snapshot()
	for i, q := range order {
		if (i < n) != (q == "high") {
			t.Fatalf("task %d came from %s; every high task must start before any low task: %v", i, q, order)
		}
	}
}

func TestWeightedProgress(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	prefill(t, b.rc, map[string]int{"high": 200, "default": 200, "low": 200})
	rec := &recorder{}
	b.start(t, worker.Options{Concurrency: 1, Catalogue: rec})
	testsupport.Eventually(t, 30*time.Second, "100 tasks", func() bool { return len(rec.snapshot()) >= 100 })
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

func TestNewRefusesNoQueues(t *testing.T) {
	t.Parallel()
	if _, err := worker.New(worker.Options{Catalogue: tasks.NewCatalogue()}); err == nil {
		t.Error("a worker with no queue must not build")
	}
}

func matches(got []*dto.LabelPair, want map[string]string) bool {
	n := 0
	for _, l := range got {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

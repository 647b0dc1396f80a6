package worker_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"taskstack/internal/tasks"
	"taskstack/internal/testsupport"
	"taskstack/internal/worker"
)

// gated is a catalogue of task types whose handlers wait for their gate
// (or their context) and count what started and finished.
type gated struct {
	gates             map[string]chan struct{}
	started, finished atomic.Int64
	interrupted       atomic.Int64
	hold              time.Duration
}

func (g *gated) Register(mux *asynq.ServeMux) {
	for typ, gate := range g.gates {
		mux.HandleFunc(typ, func(ctx context.Context, _ *asynq.Task) error {
			g.started.Add(1)
			defer g.finished.Add(1)
			var hold <-chan time.Time
			if g.hold > 0 {
				hold = time.After(g.hold)
			}
			select {
			case <-gate:
			case <-hold:
			case <-ctx.Done():
				g.interrupted.Add(1)
				return ctx.Err()
			}
			return nil
		})
	}
}

func (g *gated) Types() []string {
	out := make([]string, 0, len(g.gates))
	for typ := range g.gates {
		out = append(out, typ)
	}
	return out
}

func enqueueN(t *testing.T, b *bundle, typ string, n int) {
	t.Helper()
	c := asynq.NewClientFromRedisClient(b.rc)
	for range n {
		if _, err := c.Enqueue(asynq.NewTask(typ, nil), asynq.Queue(tasks.QueueDefault), asynq.MaxRetry(0), asynq.Retention(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
}

// servers is the number of asynq servers registered in Redis (each loop
// is one; a shed loop deregisters when it has finished).
func servers(t *testing.T, b *bundle) int {
	t.Helper()
	ss, err := b.insp.Servers()
	if err != nil {
		t.Fatal(err)
	}
	return len(ss)
}

// WORKER_SERVERS=auto: a backlog found at start gets its loops at once, the
// loops are shed once the queues are quiet, and a backlog that builds up
// while the worker runs adds them again. The gauge follows.
func TestAutoscaleAddsAndShedsLoops(t *testing.T) {
	t.Parallel()
	g := &gated{gates: map[string]chan struct{}{"test:first": make(chan struct{}), "test:second": make(chan struct{})}}
	b := setup(t, nil)
	enqueueN(t, b, "test:first", 60)
	w := b.start(t, worker.Options{
		Catalogue: g, Concurrency: 2,
		Autoscale: &worker.Autoscale{Max: 3, Backlog: b.store, Interval: 20 * time.Millisecond, PerLoop: 10, Latency: time.Hour, Quiet: 100 * time.Millisecond},
	})
	gauge := func() int { return loopsGauge(t, b) }
	if w.Loops() != 3 || gauge() != 3 {
		t.Fatalf("a backlog of 60 at start: %d loops (gauge %d), want Max=3", w.Loops(), gauge())
	}
	testsupport.Eventually(t, 15*time.Second, "3 servers registered", func() bool { return servers(t, b) == 3 })

	close(g.gates["test:first"])
	testsupport.Eventually(t, 30*time.Second, "loops shed to 1 once the queues are quiet", func() bool {
		return w.Loops() == 1 && gauge() == 1 && servers(t, b) == 1
	})
	if g.finished.Load() != 60 || g.interrupted.Load() != 0 {
		t.Errorf("%d of 60 tasks finished, %d interrupted", g.finished.Load(), g.interrupted.Load())
	}

	enqueueN(t, b, "test:second", 60)
	testsupport.Eventually(t, 15*time.Second, "loops added under a new backlog", func() bool {
		return w.Loops() == 3 && gauge() == 3
	})
	close(g.gates["test:second"])
	testsupport.Eventually(t, 15*time.Second, "all tasks done", func() bool { return g.finished.Load() == 120 })
	if lines := b.logs.Lines(`"msg":"dequeue loops"`); len(lines) < 3 {
		t.Errorf("want a log line per change (up, down..., up), got %q", lines)
	}
}

// Shutdown drains every loop: tasks in flight on all of them, and on a loop
// being shed, finish before it returns.
func TestShutdownDrainsEveryLoop(t *testing.T) {
	t.Parallel()
	g := &gated{gates: map[string]chan struct{}{"test:slow": make(chan struct{})}, hold: 300 * time.Millisecond}
	b := setup(t, nil)
	enqueueN(t, b, "test:slow", 6)
	w := b.start(t, worker.Options{
		Catalogue: g, Concurrency: 2, ShutdownTimeout: time.Minute,
		Autoscale: &worker.Autoscale{Max: 3, Backlog: b.store, Interval: 20 * time.Millisecond, PerLoop: 2, Latency: time.Hour, Quiet: time.Hour},
	})
	// Six in flight with two slots per loop: every loop holds two.
	testsupport.Eventually(t, 15*time.Second, "six tasks in flight", func() bool { return g.started.Load() == 6 })
	if w.Loops() != 3 {
		t.Fatalf("%d loops, want 3", w.Loops())
	}
	w.Shutdown()
	if g.finished.Load() != 6 || g.interrupted.Load() != 0 {
		t.Errorf("after Shutdown: %d of 6 finished, %d interrupted", g.finished.Load(), g.interrupted.Load())
	}
	if n := loopsGauge(t, b); n != 0 {
		t.Errorf("gauge %d after shutdown", n)
	}
	for _, q := range []string{"default"} {
		info, err := b.insp.GetQueueInfo(q)
		if err != nil {
			t.Fatal(err)
		}
		if info.Active != 0 || info.Pending != 0 || info.Completed != 6 {
			t.Errorf("queue %s after shutdown: active %d pending %d completed %d", q, info.Active, info.Pending, info.Completed)
		}
	}
}

// A fixed number of loops (WORKER_SERVERS=N) is exported too.
func TestFixedLoopsGauge(t *testing.T) {
	t.Parallel()
	b := setup(t, tasks.NewCatalogue())
	w := b.start(t, worker.Options{Servers: 2})
	if w.Loops() != 2 || loopsGauge(t, b) != 2 {
		t.Errorf("%d loops, gauge %v", w.Loops(), loopsGauge(t, b))
	}
}

// loopsGauge reads taskstack_worker_dequeue_loops (-1 when absent).
func loopsGauge(t *testing.T, b *bundle) int {
	t.Helper()
	fams, err := b.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "taskstack_worker_dequeue_loops" && len(f.GetMetric()) == 1 {
			return int(f.GetMetric()[0].GetGauge().GetValue())
		}
	}
	return -1
}

// A loop shed while it runs tasks stops fetching but finishes them, even
// past ShutdownTimeout (asynq's Shutdown would put them back on the queue
// to run again): the queues are quiet (nothing pending) while both loops'
// tasks still run, so one loop is shed, and its tasks complete once
// released, each run once.
func TestShedLoopFinishesItsTasks(t *testing.T) {
	t.Parallel()
	g := &gated{gates: map[string]chan struct{}{"test:held": make(chan struct{})}}
	b := setup(t, nil)
	enqueueN(t, b, "test:held", 20)
	w := b.start(t, worker.Options{
		Catalogue: g, Concurrency: 10, ShutdownTimeout: 100 * time.Millisecond,
		Autoscale: &worker.Autoscale{Max: 2, Backlog: b.store, Interval: 20 * time.Millisecond, PerLoop: 10, Latency: time.Hour, Quiet: 100 * time.Millisecond},
	})
	if w.Loops() != 2 {
		t.Fatalf("%d loops for 20 pending, want 2", w.Loops())
	}
	testsupport.Eventually(t, 15*time.Second, "one loop shed while all 20 tasks run", func() bool {
		return w.Loops() == 1 && loopsGauge(t, b) == 1 && g.started.Load() == 20
	})
	if g.finished.Load() != 0 {
		t.Fatalf("%d tasks finished before their release", g.finished.Load())
	}
	// Held well past ShutdownTimeout (not a timing assertion: only the
	// outcome below is checked).
	time.Sleep(500 * time.Millisecond)
	close(g.gates["test:held"])
	testsupport.Eventually(t, 15*time.Second, "the shed loop's tasks finished and it deregistered", func() bool {
		info, err := b.insp.GetQueueInfo("default")
		return err == nil && info.Completed == 20 && servers(t, b) == 1
	})
	if g.interrupted.Load() != 0 || g.started.Load() != 20 {
		t.Errorf("%d tasks interrupted, %d runs of 20 tasks", g.interrupted.Load(), g.started.Load())
	}
}

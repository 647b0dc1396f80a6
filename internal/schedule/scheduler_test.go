package schedule

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"taskstack/internal/audit"
	"taskstack/internal/store"
	"taskstack/internal/tasks"
	"taskstack/internal/telemetry"
	"taskstack/internal/testsupport"
)

type bundle struct {
	redis *testsupport.Redis
	insp  *asynq.Inspector
	store *store.Store
	path  string
	logs  *testsupport.LogBuffer
}

func setup(t *testing.T, file string) *bundle {
	t.Helper()
	r := testsupport.StartRedis(t)
	rc := r.Client(t)
	b := &bundle{
		redis: r,
		insp:  asynq.NewInspectorFromRedisClient(rc),
		store: store.New(store.Options{Redis: rc, Retention: time.Hour, Queues: tasks.Queues()}),
		path:  filepath.Join(t.TempDir(), "schedule.yml"),
		logs:  testsupport.NewLogBuffer(t),
	}
	b.write(t, file)
	return b
}

// write replaces the file the way a ConfigMap update does: a new file
// renamed over the old one.
func (b *bundle) write(t *testing.T, content string) {
	t.Helper()
	tmp := b.path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, b.path); err != nil {
		t.Fatal(err)
	}
}

// replica is one scheduler with its own Redis client, store and metrics,
// as in its own worker process.
type replica struct {
	s    *Scheduler
	stop func()
}

func (b *bundle) start(t *testing.T, o Options) *replica {
	t.Helper()
	cat := tasks.NewCatalogue()
	sched, err := Load(b.path, cat)
	if err != nil {
		t.Fatal(err)
	}
	o.Path, o.Catalogue = b.path, cat
	o.Store = store.New(store.Options{Redis: b.redis.Client(t), Retention: time.Hour, Queues: tasks.Queues()})
	o.Logger = telemetry.NewLogger(b.logs, "json", slog.LevelInfo)
	rec, err := audit.New(o.Logger, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	o.Audit = rec
	s, err := New(o, sched)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	r := &replica{s: s}
	var stopped bool
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := testsupport.Receive(t, done, 10*time.Second, "the scheduler's Run to return after its context ended"); err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(r.stop)
	return r
}

func (r *replica) runs(entry, outcome string) int {
	return int(testutil.ToFloat64(r.s.m.runs.WithLabelValues(entry, outcome)))
}

// ticks returns the tick times (Unix seconds) of an entry's tasks in
// queue, and fails on any task ID that is not a tick's.
func (b *bundle) ticks(t *testing.T, queue, entry string) []int64 {
	t.Helper()
	list, err := b.insp.ListPendingTasks(queue, asynq.PageSize(10000))
	if err != nil && !strings.Contains(err.Error(), "not found") {
		t.Fatal(err)
	}
	var out []int64
	for _, ti := range list {
		rest, ok := strings.CutPrefix(ti.ID, "sched:"+entry+":")
		if !ok {
			continue
		}
		u, err := strconv.ParseInt(rest, 10, 64)
		if err != nil {
			t.Fatalf("task ID %q is not a tick's", ti.ID)
		}
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}

func (b *bundle) hasTick(t *testing.T, queue, entry string, tick int64) bool {
	_, err := b.insp.GetTaskInfo(queue, TaskID(entry, time.Unix(tick, 0)))
	return err == nil
}

// TestThreeReplicasEnqueueEachTickOnce: three schedulers, each with its own
// Redis client, on one redis-server, two entries @every 1s. Over ten ticks
// every tick of every entry is enqueued exactly once, although one replica
// is stopped after the fourth.
func TestThreeReplicasEnqueueEachTickOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, `entries:
  - {name: fast, cron: "@every 1s", type: demo:echo, payload: {arg: fast, sleep: 0s}, queue: high}
  - {name: other, cron: "@every 1s", type: demo:echo, payload: {arg: other, sleep: 0s}}
`)
	var rs []*replica
	for range 3 {
		rs = append(rs, b.start(t, Options{Grace: DefaultGrace}))
	}
	first := time.Now().Unix() + 2 // a tick after every replica runs
	last := first + 9
	testsupport.Eventually(t, 30*time.Second, "the fourth tick", func() bool { return b.hasTick(t, "high", "fast", first+3) })
	rs[1].stop() // one replica goes away mid-run
	testsupport.Eventually(t, 30*time.Second, "the tenth tick", func() bool {
		return b.hasTick(t, "high", "fast", last) && b.hasTick(t, "default", "other", last)
	})
	for _, r := range rs {
		r.stop()
	}

	for _, c := range []struct{ queue, entry string }{{"high", "fast"}, {"default", "other"}} {
		all := b.ticks(t, c.queue, c.entry)
		var window []int64
		for _, u := range all {
			if u >= first && u <= last {
				window = append(window, u)
			}
		}
		if len(window) != 10 {
			t.Errorf("%s: %d tasks for the ten ticks %d..%d, want exactly 10: %v", c.entry, len(window), first, last, window)
		}
		// Every tick from the first to the last is there once: no gap, and
		// no task at a time that is not a tick.
		for i := 1; i < len(all); i++ {
			if all[i] != all[i-1]+1 {
				t.Errorf("%s: ticks %d and %d are not consecutive: %v", c.entry, all[i-1], all[i], all)
			}
		}
		enqueued, duplicate, errs, missed := 0, 0, 0, 0
		for _, r := range rs {
			enqueued += r.runs(c.entry, outcomeEnqueued)
			duplicate += r.runs(c.entry, outcomeDuplicate)
			errs += r.runs(c.entry, outcomeError)
			missed += r.runs(c.entry, outcomeMissed)
		}
		if enqueued != len(all) {
			t.Errorf("%s: the replicas counted %d enqueued, Redis holds %d tasks", c.entry, enqueued, len(all))
		}
		if duplicate == 0 || errs != 0 || missed != 0 {
			t.Errorf("%s: %d duplicate, %d error, %d missed; want refused duplicates and nothing else", c.entry, duplicate, errs, missed)
		}
		// Measured, not asserted: how late after its tick a task was enqueued.
		var worst time.Duration
		for _, u := range window {
			ti, err := b.insp.GetTaskInfo(c.queue, TaskID(c.entry, time.Unix(u, 0)))
			if err != nil {
				t.Fatal(err)
			}
			if at, ok := tasks.EnqueuedAt(ti.Headers); ok {
				worst = max(worst, at.Sub(time.Unix(u, 0)))
			}
		}
		t.Logf("%s: %d ticks, %d enqueued and %d refused as duplicates over 3 replicas (one stopped after tick 4); of the ten, the latest enqueued %s after its tick",
			c.entry, len(all), enqueued, duplicate, worst)
	}
}

// TestReloadAddsAndRemovesEntries: a changed file adds and removes entries
// while the scheduler runs; a bad one is refused and the schedule in force
// stays.
func TestReloadAddsAndRemovesEntries(t *testing.T) {
	t.Parallel()
	b := setup(t, "entries:\n  - {name: old, cron: '@every 1s', type: demo:echo, payload: {sleep: 0s}}\n")
	r := b.start(t, Options{ReloadEvery: 20 * time.Millisecond})
	ctx := context.Background()
	testsupport.Eventually(t, 30*time.Second, "a tick of old", func() bool { return len(b.ticks(t, "default", "old")) > 0 })

	b.write(t, "entries:\n  - {name: new, cron: '@every 1s', type: demo:echo, payload: {sleep: 0s}, queue: low}\n")
	testsupport.Eventually(t, 30*time.Second, "the reload", func() bool {
		return testutil.ToFloat64(r.s.m.reloads.WithLabelValues(reloadOK)) == 1
	})
	oldTicks := len(b.ticks(t, "default", "old"))
	testsupport.Eventually(t, 30*time.Second, "two ticks of new", func() bool { return len(b.ticks(t, "low", "new")) >= 2 })
	if n := len(b.ticks(t, "default", "old")); n != oldTicks {
		t.Errorf("the removed entry was enqueued %d more times after the reload", n-oldTicks)
	}
	got, err := b.store.Schedule(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "new" || got[0].Queue != "low" || got[0].NextRun.IsZero() {
		t.Errorf("published schedule %+v, want only new", got)
	}
	if n := testutil.CollectAndCount(r.s.m.runs); n != len(outcomes) {
		t.Errorf("%d run series after the reload, want the %d of the one entry", n, len(outcomes))
	}
	if lines := b.logs.Lines(`"audit":true`, `"actor":"system"`, `"action":"schedule_reload"`, `"outcome":"ok"`, "1 added, 1 removed, 0 changed"); len(lines) != 1 {
		t.Errorf("want one audit line for the reload, got %q", lines)
	}

	// A bad file: refused with its line and field; new keeps ticking.
	b.write(t, "entries:\n  - {name: new, cron: '@every 1s', type: demo:echo}\n  - {name: broken, cron: '@every 1s', type: demo:echo, queue: urgent}\n")
	testsupport.Eventually(t, 30*time.Second, "the refused reload", func() bool {
		return testutil.ToFloat64(r.s.m.reloads.WithLabelValues(reloadError)) == 1
	})
	if lines := b.logs.Lines("schedule file invalid", "line 3", "queue"); len(lines) != 1 {
		t.Errorf("want one error naming line 3 and the queue, got %q", lines)
	}
	if lines := b.logs.Lines(`"audit":true`, `"action":"schedule_reload"`, `"outcome":"rejected"`, "line 3"); len(lines) != 1 {
		t.Errorf("want one audit line for the refused reload, got %q", lines)
	}
	before := len(b.ticks(t, "low", "new"))
	testsupport.Eventually(t, 30*time.Second, "new still ticking", func() bool { return len(b.ticks(t, "low", "new")) > before })
	if r.runs("broken", outcomeEnqueued) != 0 || len(b.ticks(t, "default", "broken")) != 0 {
		t.Error("an entry of the refused file ran")
	}
	time.Sleep(100 * time.Millisecond) // several polls of the unchanged bad file
	if n := testutil.ToFloat64(r.s.m.reloads.WithLabelValues(reloadError)); n != 1 {
		t.Errorf("the same bad file was counted %v times, want once", n)
	}
	if testutil.ToFloat64(r.s.m.refused) != 1 {
		t.Error("taskstack_schedule_file_refused is not 1 while the bad file is on disk")
	}
	// Putting back the file in force clears it.
	b.write(t, "entries:\n  - {name: new, cron: '@every 1s', type: demo:echo, payload: {sleep: 0s}, queue: low}\n")
	testsupport.Eventually(t, 30*time.Second, "the refusal cleared", func() bool { return testutil.ToFloat64(r.s.m.refused) == 0 })
}

// TestMissedTicks: every worker was down at an hourly tick. A worker that
// starts within the grace enqueues that tick once (three replicas, one
// task); one that starts later skips it and waits for the next.
func TestMissedTicks(t *testing.T) {
	t.Parallel()
	const file = "entries:\n  - {name: hourly, cron: '@every 1h', type: demo:echo, payload: {sleep: 0s}}\n"
	// A clock 30 seconds past an hour (as real time passes).
	real := time.Now()
	tick := real.Truncate(time.Hour).Add(time.Hour)
	offset := tick.Add(30 * time.Second).Sub(real)
	clock := func() time.Time { return time.Now().Add(offset) }

	t.Run("within the grace: once", func(t *testing.T) {
		t.Parallel()
		b := setup(t, file)
		var rs []*replica
		for range 3 {
			rs = append(rs, b.start(t, Options{Grace: time.Minute, Now: clock}))
		}
		testsupport.Eventually(t, 30*time.Second, "every replica tried the missed tick", func() bool {
			n := 0
			for _, r := range rs {
				n += r.runs("hourly", outcomeEnqueued) + r.runs("hourly", outcomeDuplicate)
			}
			return n == 3
		})
		if got := b.ticks(t, "default", "hourly"); !slices.Equal(got, []int64{tick.Unix()}) {
			t.Errorf("tasks for ticks %v, want the one missed tick %d", got, tick.Unix())
		}
		enqueued := 0
		for _, r := range rs {
			enqueued += r.runs("hourly", outcomeEnqueued)
		}
		if enqueued != 1 {
			t.Errorf("%d replicas enqueued the tick, want 1", enqueued)
		}
		testsupport.Eventually(t, 10*time.Second, "the page's last and next run", func() bool {
			s, err := b.store.Schedule(context.Background())
			return err == nil && len(s) == 1 && s[0].LastRun.Equal(tick) && s[0].LastTaskID == TaskID("hourly", tick) &&
				s[0].NextRun.Equal(tick.Add(time.Hour))
		})
	})
	t.Run("past the grace: skipped", func(t *testing.T) {
		t.Parallel()
		b := setup(t, file)
		r := b.start(t, Options{Grace: 10 * time.Second, Now: clock})
		testsupport.Eventually(t, 10*time.Second, "the published schedule", func() bool {
			s, err := b.store.Schedule(context.Background())
			return err == nil && len(s) == 1 && s[0].NextRun.Equal(tick.Add(time.Hour)) && s[0].LastRun.IsZero()
		})
		r.stop()
		if got := b.ticks(t, "default", "hourly"); len(got) != 0 {
			t.Errorf("tasks for ticks %v, want none: the tick is older than the grace", got)
		}
		if next := testutil.ToFloat64(r.s.m.nextRun.WithLabelValues("hourly")); next != float64(tick.Add(time.Hour).Unix()) {
			t.Errorf("next run gauge %v, want %d", next, tick.Add(time.Hour).Unix())
		}
	})
}

// TestEnqueueErrorsAreRetriedWithinTheGrace: Redis refusing writes for a
// moment (here: min-replicas-to-write with no replica, so every write is
// refused with NOREPLICAS) does not lose the tick; it is enqueued once
// writes are accepted again, within the grace.
func TestEnqueueErrorsAreRetriedWithinTheGrace(t *testing.T) {
	t.Parallel()
	b := setup(t, "entries:\n  - {name: e, cron: '@every 1h', type: demo:echo, payload: {sleep: 0s}}\n")
	admin := b.redis.Client(t)
	ctx := context.Background()
	if err := admin.ConfigSet(ctx, "min-replicas-to-write", "1").Err(); err != nil {
		t.Fatal(err)
	}
	real := time.Now()
	tick := real.Truncate(time.Hour).Add(time.Hour)
	offset := tick.Add(time.Second).Sub(real) // one second past a tick nobody enqueued
	r := b.start(t, Options{Grace: time.Minute, Now: func() time.Time { return time.Now().Add(offset) }})
	testsupport.Eventually(t, 30*time.Second, "a refused enqueue", func() bool { return r.runs("e", outcomeError) >= 1 })
	if err := admin.ConfigSet(ctx, "min-replicas-to-write", "0").Err(); err != nil {
		t.Fatal(err)
	}
	testsupport.Eventually(t, 30*time.Second, "the tick enqueued on a retry", func() bool { return r.runs("e", outcomeEnqueued) == 1 })
	if got := b.ticks(t, "default", "e"); !slices.Equal(got, []int64{tick.Unix()}) {
		t.Errorf("ticks %v, want %d", got, tick.Unix())
	}
	if len(b.logs.Lines("schedule tick not enqueued; retrying", "NOREPLICAS")) == 0 {
		t.Error("the refused enqueue was not logged with its cause")
	}
}

func TestTaskIDNamesEntryAndTick(t *testing.T) {
	t.Parallel()
	if got := TaskID("nightly-report", time.Unix(1767232800, 0)); got != "sched:nightly-report:1767232800" {
		t.Errorf("TaskID = %q", got)
	}
}

package faults

import (
	"context"
	"net/http"
	"syscall"
	"testing"
	"time"

	"taskstack/internal/testsupport"
)

// TestWorkerKill9: a worker dies (SIGKILL) with 50 tasks running and 150
// waiting; a new worker starts at once, as an orchestrator would start it.
// The waiting tasks go on right away; the running ones are orphans until
// their lease runs out (30 s after its last renewal) and the new worker's
// recoverer retries them (WORKER_LEASE_EXPIRY_MARGIN + WORKER_RECOVERY_INTERVAL
// later). Every task completes; the interrupted ones run again by necessity.
func TestWorkerKill9(t *testing.T) {
	t.Parallel()
	workerKill9(t, "worker-kill9", nil)
}

// workerKill9 runs the scenario with extra worker settings.
func workerKill9(t *testing.T, scenario string, settings map[string]string) {
	t.Helper()
	r := testsupport.StartRedis(t)
	redisEnv := map[string]string{"REDIS_URL": r.URL}
	workerEnv := env(redisEnv, map[string]string{"WORKER_CONCURRENCY": "50"}, settings)
	app := startApp(t, redisEnv)
	w1 := startWorker(t, workerEnv)

	l := &load{appURL: app.url, prefix: "kill9", n: 200, clients: 8, pace: time.Millisecond, sleep: "2s", queue: "default"}
	subs := l.run(context.Background())
	if got := statuses(subs); got[http.StatusAccepted] != l.n {
		t.Fatalf("submissions: %v, want %d × 202", got, l.n)
	}
	var inFlight []string
	testsupport.Eventually(t, 30*time.Second, "50 tasks running", func() bool {
		inFlight = activeTasks(t, app.url, "default")
		return len(inFlight) >= 50
	})
	if err := w1.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if _, err := w1.Wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	w2 := startWorker(t, workerEnv)

	// Recovery: every task that was running at the kill completes again.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	left := map[string]bool{}
	for _, id := range inFlight {
		left[id] = true
	}
	var recovered time.Duration
	for len(left) > 0 && ctx.Err() == nil {
		for id := range left {
			if tv, _, err := getTask(ctx, app.url, "default", id); err == nil && tv.State == "completed" {
				delete(left, id)
			}
		}
		recovered = time.Since(killed)
		time.Sleep(200 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Fatalf("%d tasks running at the kill did not complete within 4 minutes", len(left))
	}
	o := settle(t, app.url, subs, []*proc{w1, w2}, time.Minute)
	o.check(t, false)
	// Tasks that completed more than once: a handler that finished in the
	// instant before the kill, before asynq recorded it.
	firstTask, _ := firstDone(w2.Output(), time.Time{})
	retried := 0
	for _, id := range inFlight {
		if o.views[id].Retried > 0 {
			retried++
		}
	}
	figure(t, scenario, "tasks", o.accepted, "lost", len(o.lost), "interrupted", len(inFlight),
		"interrupted_retried", retried, "rerun_completed", len(o.rerun),
		"new_worker_first_task", firstTask.Sub(killed), "recovery", recovered)
	if retried != len(inFlight) {
		// A task listed active just before the kill may have finished before it.
		t.Logf("%d of %d tasks running at the kill went through the recoverer", retried, len(inFlight))
	}
}

// TestRollingRestart: two workers; one gets SIGTERM while tasks flow, drains
// (its tasks are shorter than WORKER_SHUTDOWN_TIMEOUT), exits 0 and is
// started again. Nothing is lost, nothing runs twice, and the restarted
// worker takes work again (the time is reported).
func TestRollingRestart(t *testing.T) {
	t.Parallel()
	r := testsupport.StartRedis(t)
	redisEnv := map[string]string{"REDIS_URL": r.URL}
	workerEnv := env(redisEnv, map[string]string{"WORKER_CONCURRENCY": "10", "WORKER_SHUTDOWN_TIMEOUT": "10s"})
	app := startApp(t, redisEnv)
	a := startWorker(t, workerEnv)
	b := startWorker(t, workerEnv)

	// 600 tasks of 300 ms at ~40/s: about 15 s of steady flow.
	l := &load{appURL: app.url, prefix: "rolling", n: 600, clients: 4, pace: 100 * time.Millisecond, sleep: "300ms"}
	done := make(chan []submission)
	go func() { done <- l.run(context.Background()) }()

	testsupport.Eventually(t, 30*time.Second, "worker A busy", func() bool {
		_, ok := firstDone(a.Output(), time.Time{})
		return ok && l.accepted.Load() > 100
	})
	if err := a.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	termed := time.Now()
	code, err := a.Wait(30 * time.Second)
	if err != nil || code != 0 {
		t.Fatalf("worker A: exit %d, %v", code, err)
	}
	drained := time.Since(termed)
	a2 := startWorker(t, workerEnv)
	var tookWork time.Duration
	testsupport.Eventually(t, 30*time.Second, "restarted worker runs a task", func() bool {
		at, ok := firstDone(a2.Output(), time.Time{})
		tookWork = at.Sub(a2.started)
		return ok
	})
	subs := testsupport.Receive(t, done, 2*time.Minute, "an answer to every submission")
	if got := statuses(subs); got[http.StatusAccepted] != l.n {
		t.Errorf("submissions: %v, want %d × 202", got, l.n)
	}
	o := settle(t, app.url, subs, []*proc{a, b, a2}, time.Minute)
	o.check(t, true)
	figure(t, "rolling-restart", "tasks", o.accepted, "lost", len(o.lost), "rerun_completed", len(o.rerun),
		"drain", drained, "restart_to_first_task", tookWork,
		"runs_a", len(taskDone(a.Output(), time.Time{})), "runs_b", len(taskDone(b.Output(), time.Time{})),
		"runs_a_restarted", len(taskDone(a2.Output(), time.Time{})))
}

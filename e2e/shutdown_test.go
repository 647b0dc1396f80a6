package e2e

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"taskstack/internal/testsupport"
)

// TestShutdownFinishesShortTask: SIGTERM with a short task in flight lets it
// complete, then the worker exits 0.
func TestShutdownFinishesShortTask(t *testing.T) {
	t.Parallel()
	s := startStack(t, map[string]string{"WORKER_SHUTDOWN_TIMEOUT": "20s"})
	c := submit(t, s.appURL, `{"type":"demo:echo","payload":{"arg":"short","sleep":"2s"},"queue":"default"}`)
	waitState(t, s.appURL, c.Links.Self, "active", 20*time.Second)
	if err := s.worker.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, err := s.worker.Wait(30 * time.Second)
	if err != nil || code != 0 {
		t.Fatalf("worker exit code %d, err %v\n%s", code, err, s.worker.Output())
	}
	tv := waitState(t, s.appURL, c.Links.Self, "completed", 5*time.Second)
	if tv.Result == nil || *tv.Result != "prefix___short" {
		t.Errorf("result %v", tv.Result)
	}
}

// TestShutdownRequeuesLongTask: a task longer than WORKER_SHUTDOWN_TIMEOUT
// is put back in a runnable state, not lost, and a new worker finishes it.
func TestShutdownRequeuesLongTask(t *testing.T) {
	t.Parallel()
	s := startStack(t, map[string]string{"WORKER_SHUTDOWN_TIMEOUT": "1s"})
	c := submit(t, s.appURL, `{"type":"demo:echo","payload":{"arg":"long","sleep":"3s"},"queue":"high"}`)
	waitState(t, s.appURL, c.Links.Self, "active", 20*time.Second)
	if err := s.worker.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, err := s.worker.Wait(20 * time.Second)
	if err != nil || code != 0 {
		t.Fatalf("worker exit code %d, err %v", code, err)
	}
	insp := asynq.NewInspectorFromRedisClient(s.redis.Client(t))
	ti, err := insp.GetTaskInfo("high", c.ID)
	if err != nil {
		t.Fatalf("task lost after shutdown: %v", err)
	}
	if ti.State != asynq.TaskStatePending && ti.State != asynq.TaskStateRetry {
		t.Fatalf("task state %s after shutdown, want pending or retry", ti.State)
	}
	// A new worker picks it up and completes it.
	adminAddr := fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t))
	testsupport.StartProcess(t, testsupport.BuildBinary(t, "worker"), map[string]string{
		"REDIS_URL": s.redis.URL, "WORKER_ADMIN_ADDR": adminAddr,
	})
	if ti.State == asynq.TaskStateRetry {
		if err := insp.RunTask("high", c.ID); err != nil {
			t.Fatal(err)
		}
	}
	tv := waitState(t, s.appURL, c.Links.Self, "completed", 30*time.Second)
	if tv.Result == nil || *tv.Result != "prefix___long" {
		t.Errorf("result %v", tv.Result)
	}
}

// TestDevstackEmbeddedRedis: with no REDIS_URL, devstack runs a task to
// completion on its embedded Redis and says it is for development only.
func TestDevstackEmbeddedRedis(t *testing.T) {
	t.Parallel()
	bin := testsupport.BuildBinary(t, "devstack")
	appAddr := fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t))
	env := map[string]string{
		"APP_ADDR":          appAddr,
		"WORKER_ADMIN_ADDR": fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t)),
		"MONITOR_ADDR":      fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t)),
	}
	p := testsupport.StartProcess(t, bin, env)
	base := "http://" + appAddr
	testsupport.WaitHTTP(t, p, base+"/readyz", 60*time.Second)
	c := submit(t, base, `{"type":"demo:echo","payload":{"arg":"dev","sleep":"0s"}}`)
	tv := waitState(t, base, c.Links.Self, "completed", 30*time.Second)
	if tv.Result == nil || *tv.Result != "prefix___dev" {
		t.Errorf("result %v", tv.Result)
	}
	if out := p.Output(); !containsAll(out, "EMBEDDED IN-MEMORY Redis", "development only") {
		t.Errorf("devstack must log that the embedded Redis is dev-only:\n%s", out)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, err := p.Wait(30 * time.Second); err != nil || code != 0 {
		t.Errorf("devstack exit %d, %v", code, err)
	}
}

package stack_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"taskstack/internal/stack"
	"taskstack/internal/testsupport"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func refuse(t *testing.T, what string, run func(context.Context) error) error {
	t.Helper()
	return testsupport.Refusal(t, 10*time.Second, what, run)
}

func TestConfigurationErrorsStopBeforeAnything(t *testing.T) {
	t.Parallel()
	held := testsupport.HeldPort(t)
	badSchedule := filepath.Join(t.TempDir(), "schedule.yml")
	if err := os.WriteFile(badSchedule, []byte("entries:\n  - name: tick\n    cron: '@every 1m'\n    type: demo:echo\n    payload: {sleep: soon}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		run  func(context.Context, stack.Invocation) error
		env  map[string]string
		want string
	}{
		{"worker queue not in the catalogue", stack.RunWorker, map[string]string{"WORKER_QUEUES": "high:6,urgent:1", "WORKER_ADMIN_ADDR": held}, "WORKER_QUEUES: unknown queue \"urgent\""},
		{"worker schedule entry names line and field", stack.RunWorker, map[string]string{"SCHEDULE_FILE": badSchedule, "WORKER_ADMIN_ADDR": held},
			"SCHEDULE_FILE: schedule file " + badSchedule + ": line 5: entry \"tick\": payload.sleep: \"soon\" is not a duration"},
		{"worker schedule file missing", stack.RunWorker, map[string]string{"SCHEDULE_FILE": badSchedule + ".missing", "WORKER_ADMIN_ADDR": held}, "no such file"},
		{"app bad webhook allowlist", stack.RunApp, map[string]string{"WEBHOOK_ALLOWED_HOSTS": "hooks.example.com, http://x", "APP_ADDR": held}, "WEBHOOK_ALLOWED_HOSTS: \"http://x\" is a URL"},
		{"worker bad webhook allowlist", stack.RunWorker, map[string]string{"WEBHOOK_ALLOWED_HOSTS": "10.0.0.0/99", "WORKER_ADMIN_ADDR": held}, "WEBHOOK_ALLOWED_HOSTS: \"10.0.0.0/99\" is not an IP range"},
		{"app bad retention", stack.RunApp, map[string]string{"TASK_RETENTION": "forever", "APP_ADDR": held}, "TASK_RETENTION"},
		{"monitor bad root", stack.RunMonitor, map[string]string{"MONITOR_ROOT_PATH": "/a{b}", "MONITOR_ADDR": held}, "MONITOR_ROOT_PATH"},
		{"devstack in prod", func(ctx context.Context, inv stack.Invocation) error {
			return stack.RunDevstack(ctx, inv, func() (string, func(), error) { t.Error("embedded Redis started"); return "", nil, nil })
		}, map[string]string{"APP_ENV": "prod", "REDIS_PASSWORD": "Zq8-long-random-value", "MONITOR_USERNAME": "ops", "MONITOR_PASSWORD": "Vt5-another-long-value"}, "devstack is for development only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := refuse(t, tt.name, func(ctx context.Context) error {
				return tt.run(ctx, stack.Invocation{Getenv: env(tt.env), Stderr: io.Discard})
			})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to say %q", err, tt.want)
			}
		})
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDevstackComposesTheComponents runs the three components in one
// process on a real Redis: the page, the dashboard and the worker's admin
// port answer, the page links to the dashboard, and a task submitted to the
// app is run by the worker.
func TestDevstackComposesTheComponents(t *testing.T) {
	t.Parallel()
	r := testsupport.StartRedis(t)
	app, admin, mon := testsupport.HeldPort(t), testsupport.HeldPort(t), testsupport.HeldPort(t)
	// Free the held ports just before the run binds them.
	ports := map[string]string{"APP_ADDR": app, "WORKER_ADMIN_ADDR": admin, "MONITOR_ADDR": mon}
	for _, a := range ports {
		testsupport.Release(t, a)
	}
	logs := testsupport.NewLogBuffer(t)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	// The receiver is on loopback: allowed only because it is listed.
	vars := map[string]string{"REDIS_URL": r.URL, "LOG_FORMAT": "json", "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"}
	for k, v := range ports {
		vars[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- stack.RunDevstack(ctx, stack.Invocation{Getenv: env(vars), Stderr: logs}, func() (string, func(), error) {
			t.Error("embedded Redis started although REDIS_URL is set")
			return "", func() {}, nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("devstack: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("devstack did not stop")
		}
	})
	testsupport.WaitHTTP(t, nil, "http://"+app+"/readyz", 15*time.Second)
	testsupport.WaitHTTP(t, nil, "http://"+admin+"/readyz", 15*time.Second)
	testsupport.WaitHTTP(t, nil, "http://"+mon+"/readyz", 15*time.Second)
	if code, body := get(t, "http://"+app+"/"); code != 200 || !strings.Contains(body, "http://"+mon+"/") {
		t.Errorf("page = %d, and it should link the dashboard at %s", code, mon)
	}
	if code, _ := get(t, "http://"+mon+"/api/queues"); code != 200 {
		t.Errorf("dashboard API = %d", code)
	}
	resp, err := testsupport.HTTPClient().Post("http://"+app+"/api/v1/tasks", "application/json", strings.NewReader(`{"type":"demo:echo","payload":{"arg":"dev","sleep":"0s"},"queue":"high"}`))
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		Links struct{ Self string } `json:"links"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	testsupport.Eventually(t, 15*time.Second, "the task completed", func() bool {
		_, body := get(t, "http://"+app+created.Links.Self)
		return strings.Contains(body, `"result":"prefix___dev"`)
	})
	// WEBHOOK_ALLOWED_HOSTS reaches the app (a URL off the list is refused
	// at enqueue, naming payload.url) and the worker (which delivers).
	resp, err = testsupport.HTTPClient().Post("http://"+app+"/api/v1/tasks", "application/json", strings.NewReader(`{"type":"demo:webhook","payload":{"url":"http://10.0.0.1/x"}}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), `"field":"payload.url"`) {
		t.Errorf("a webhook URL off the allowlist: %d %s", resp.StatusCode, body)
	}
	resp, err = testsupport.HTTPClient().Post("http://"+app+"/api/v1/tasks", "application/json", strings.NewReader(`{"type":"demo:webhook","payload":{"url":"`+hook.URL+`/in"}}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	testsupport.Eventually(t, 15*time.Second, "the webhook delivered", func() bool {
		_, body := get(t, "http://"+app+created.Links.Self)
		return strings.Contains(body, `"result":"delivered: HTTP 204"`)
	})
	// One registry: the worker's admin port shows the worker's and the app's series.
	_, metrics := get(t, "http://"+admin+"/metrics")
	for _, name := range []string{"taskstack_tasks_processed_total", "taskstack_tasks_enqueued_total", "asynq_queue_size"} {
		if !strings.Contains(metrics, name) {
			t.Errorf("devstack /metrics lacks %s", name)
		}
	}
	if len(logs.Lines(`"msg":"devstack running"`)) != 1 {
		t.Error("no devstack running line")
	}
}

func TestDevstackEmbeddedRedisIsAnnounced(t *testing.T) {
	t.Parallel()
	r := testsupport.StartRedis(t) // stands in for the embedded one
	stopped := make(chan struct{})
	logs := testsupport.NewLogBuffer(t)
	vars := map[string]string{"LOG_FORMAT": "json", "APP_ADDR": "127.0.0.1:0", "WORKER_ADMIN_ADDR": "127.0.0.1:0", "MONITOR_ADDR": "127.0.0.1:0"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- stack.RunDevstack(ctx, stack.Invocation{Getenv: env(vars), Stderr: logs}, func() (string, func(), error) {
			return r.Addr, func() { close(stopped) }, nil
		})
	}()
	testsupport.Eventually(t, 15*time.Second, "devstack running", func() bool { return len(logs.Lines("devstack running")) == 1 })
	if len(logs.Lines("EMBEDDED IN-MEMORY Redis")) != 1 {
		t.Error("the embedded Redis is not announced")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("devstack did not stop")
	}
	select {
	case <-stopped:
	default:
		t.Error("the embedded Redis was not stopped")
	}
}

// TestWorkerSettingsReachTheWorker: what the environment says about the
// dequeue loops is what the worker runs with. internal/config tests that
// each variable is read, internal/worker what each option does; this is
// the mapping in between, read from the line the worker logs at start.
func TestWorkerSettingsReachTheWorker(t *testing.T) {
	t.Parallel()
	r := testsupport.StartRedis(t)
	logs := testsupport.NewLogBuffer(t)
	vars := map[string]string{
		"REDIS_URL": r.URL, "LOG_FORMAT": "json", "WORKER_ADMIN_ADDR": "127.0.0.1:0", "CANARY_INTERVAL": "0",
		"WORKER_QUEUES": "high:2,low:1", "WORKER_STRICT_PRIORITY": "true", "WORKER_CONCURRENCY": "3", "WORKER_SERVERS": "2",
		"WORKER_TASK_CHECK_INTERVAL": "50ms", "WORKER_RECOVERY_INTERVAL": "7s", "WORKER_LEASE_EXPIRY_MARGIN": "9s",
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- stack.RunWorker(ctx, stack.Invocation{Getenv: env(vars), Stderr: logs}) }()
	t.Cleanup(func() {
		cancel()
		if err := testsupport.Receive(t, done, 30*time.Second, "the worker to stop"); err != nil {
			t.Errorf("worker: %v", err)
		}
	})
	testsupport.Eventually(t, 15*time.Second, "the worker started", func() bool { return len(logs.Lines(`"msg":"worker started"`)) == 1 })
	type settings struct {
		Queues            map[string]int `json:"queues"`
		StrictPriority    bool           `json:"strict_priority"`
		Concurrency       int            `json:"concurrency"`
		Servers           int            `json:"servers"`
		TaskCheckInterval time.Duration  `json:"task_check_interval"`
		RecoveryInterval  time.Duration  `json:"recovery_interval"`
		LeaseExpiryMargin time.Duration  `json:"lease_expiry_margin"`
	}
	line := logs.Lines(`"msg":"worker started"`)[0]
	var got settings
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	want := settings{
		Queues: map[string]int{"high": 2, "low": 1}, StrictPriority: true, Concurrency: 3, Servers: 2,
		TaskCheckInterval: 50 * time.Millisecond, RecoveryInterval: 7 * time.Second, LeaseExpiryMargin: 9 * time.Second,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("worker settings (-want +got):\n%s\n%s", diff, line)
	}
}

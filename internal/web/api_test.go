package web_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"taskstack/internal/store"
	"taskstack/internal/tasks"
	"taskstack/internal/telemetry"
	"taskstack/internal/testsupport"
	"taskstack/internal/web"
	"taskstack/internal/worker"
)

type fixture struct {
	srv   *httptest.Server
	redis *testsupport.Redis
	rc    *redis.Client
	store *store.Store
	insp  *asynq.Inspector
	reg   *prometheus.Registry
}

// newApp builds the app's handler on rc the way the stack does; o's zero
// fields get test defaults.
func newApp(tb testing.TB, rc redis.UniversalClient, o web.Options) (*web.Server, *store.Store) {
	tb.Helper()
	st := store.New(store.Options{Redis: rc, Retention: time.Hour, Queues: tasks.Queues(), Tracer: o.Tracer, Propagator: o.Propagator})
	o.Store = st
	if o.Catalogue == nil {
		o.Catalogue = tasks.NewCatalogue()
	}
	if o.Logger == nil {
		o.Logger = telemetry.NewLogger(testsupport.NewLogBuffer(tb), "text", slog.LevelDebug)
	}
	app, err := web.New(o)
	if err != nil {
		tb.Fatal(err)
	}
	return app, st
}

func setup(t *testing.T) *fixture {
	t.Helper()
	r := testsupport.StartRedis(t)
	rc := redis.NewClient(&redis.Options{Addr: r.Addr, DialTimeout: time.Second, ReadTimeout: time.Second, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rc.Close() })
	reg := prometheus.NewRegistry()
	app, st := newApp(t, rc, web.Options{MonitorURL: "http://monitor.test/", GrafanaURL: "http://grafana.test/", Registry: reg})
	srv := serve(t, app)
	insp := asynq.NewInspectorFromRedisClient(r.Client(t))
	return &fixture{srv: srv, redis: r, rc: rc, store: st, insp: insp, reg: reg}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, r.body)
	}
	return m
}

func (f *fixture) do(t *testing.T, method, path string, body io.Reader, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := testsupport.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, b}
}

func (f *fixture) post(t *testing.T, body string, headers ...string) response {
	t.Helper()
	return f.do(t, http.MethodPost, "/api/v1/tasks", strings.NewReader(body), append([]string{"Content-Type", "application/json"}, headers...)...)
}

func (f *fixture) taskCount(t *testing.T) int {
	t.Helper()
	n := 0
	qs, err := f.insp.Queues()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		qi, err := f.insp.GetQueueInfo(q)
		if err != nil {
			t.Fatal(err)
		}
		n += qi.Size
	}
	return n
}

func TestCreateTask(t *testing.T) {
	t.Parallel()
	f := setup(t)
	res := f.post(t, `{"type":"demo:echo","payload":{"arg":"hello","sleep":"0s"},"queue":"high","max_retry":1,"timeout":"30s"}`)
	if res.status != http.StatusAccepted {
		t.Fatalf("status %d: %s", res.status, res.body)
	}
	body := res.json(t)
	id, _ := body["id"].(string)
	want := "/api/v1/queues/high/tasks/" + id
	if id == "" || body["queue"] != "high" || body["type"] != "demo:echo" || body["state"] != "pending" {
		t.Errorf("unexpected body %s", res.body)
	}
	if res.header.Get("Location") != want || body["links"].(map[string]any)["self"] != want {
		t.Errorf("Location %q / self link %v, want %q", res.header.Get("Location"), body["links"], want)
	}
	ti, err := f.insp.GetTaskInfo("high", id)
	if err != nil {
		t.Fatalf("task not in Redis: %v", err)
	}
	if ti.MaxRetry != 1 || ti.Timeout != 30*time.Second || ti.Type != tasks.TypeEcho {
		t.Errorf("options not applied: %+v", ti)
	}
	if _, ok := tasks.EnqueuedAt(ti.Headers); !ok {
		t.Error("enqueue time header missing")
	}

	get := f.do(t, http.MethodGet, want, nil)
	if get.status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", want, get.status, get.body)
	}
	task := get.json(t)
	for _, k := range []string{"id", "queue", "type", "state", "payload", "result", "last_error", "retried", "max_retry", "enqueued_at", "completed_at", "next_process_at", "last_failed_at"} {
		if _, ok := task[k]; !ok {
			t.Errorf("task JSON lacks %q: %s", k, get.body)
		}
	}
	if task["payload"].(map[string]any)["arg"] != "hello" {
		t.Errorf("payload not returned: %s", get.body)
	}
}

func TestCreateTaskScheduled(t *testing.T) {
	t.Parallel()
	f := setup(t)
	res := f.post(t, `{"type":"demo:echo","payload":{"arg":"later"},"process_in":"1h"}`)
	if res.status != http.StatusAccepted {
		t.Fatalf("status %d: %s", res.status, res.body)
	}
	body := res.json(t)
	if body["state"] != "scheduled" || body["queue"] != "default" {
		t.Errorf("want a scheduled task on the type's default queue, got %s", res.body)
	}
}

func TestCreateTaskErrors(t *testing.T) {
	t.Parallel()
	f := setup(t)
	tests := []struct {
		name   string
		body   string
		status int
		field  string
	}{
		{"malformed JSON", `{"type":`, http.StatusBadRequest, ""},
		{"not an object", `[1,2]`, http.StatusBadRequest, ""},
		{"empty body", ``, http.StatusBadRequest, ""},
		{"trailing data", `{"type":"demo:echo"} {}`, http.StatusBadRequest, ""},
		{"unknown field", `{"type":"demo:echo","priority":"high"}`, http.StatusBadRequest, "priority"},
		{"wrong type", `{"type":"demo:echo","max_retry":"three"}`, http.StatusBadRequest, "max_retry"},
		{"missing type", `{"payload":{"arg":"a"}}`, http.StatusUnprocessableEntity, "type"},
		{"unknown type", `{"type":"demo:nope"}`, http.StatusUnprocessableEntity, "type"},
		{"unknown queue", `{"type":"demo:echo","queue":"urgent"}`, http.StatusUnprocessableEntity, "queue"},
		{"bad sleep", `{"type":"demo:echo","payload":{"arg":"a","sleep":"forever"}}`, http.StatusUnprocessableEntity, "payload.sleep"},
		{"sleep over bound", `{"type":"demo:echo","payload":{"arg":"a","sleep":"11m"}}`, http.StatusUnprocessableEntity, "payload.sleep"},
		{"bad process_in", `{"type":"demo:echo","process_in":"later"}`, http.StatusUnprocessableEntity, "process_in"},
		{"bad timeout", `{"type":"demo:echo","timeout":"2h"}`, http.StatusUnprocessableEntity, "timeout"},
		{"bad max_retry", `{"type":"demo:echo","max_retry":-1}`, http.StatusUnprocessableEntity, "max_retry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := f.post(t, tt.body)
			if res.status != tt.status {
				t.Fatalf("status %d, want %d: %s", res.status, tt.status, res.body)
			}
			if ct := res.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			p := res.json(t)
			if p["status"] != float64(tt.status) || p["title"] == "" {
				t.Errorf("not a problem document: %s", res.body)
			}
			if tt.field != "" && !hasField(p, tt.field) {
				t.Errorf("errors do not name %q: %s", tt.field, res.body)
			}
		})
	}
	if n := f.taskCount(t); n != 0 {
		t.Errorf("%d tasks enqueued by rejected requests", n)
	}
}

func hasField(p map[string]any, field string) bool {
	errs, _ := p["errors"].([]any)
	for _, e := range errs {
		if m, ok := e.(map[string]any); ok && m["field"] == field && m["message"] != "" {
			return true
		}
	}
	return false
}

func TestBodyTooLarge(t *testing.T) {
	t.Parallel()
	f := setup(t)
	big := `{"type":"demo:echo","payload":{"arg":"` + strings.Repeat("x", web.MaxBodyBytes) + `"}}`
	res := f.post(t, big)
	if res.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413: %.200s", res.status, res.body)
	}
	if res.header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("Content-Type %q", res.header.Get("Content-Type"))
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	f := setup(t)
	body := `{"type":"demo:echo","payload":{"arg":"once","sleep":"0s"},"queue":"low"}`
	first := f.post(t, body, "Idempotency-Key", "order-42")
	if first.status != http.StatusAccepted {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	// Same request, different formatting and key order: the same request.
	again := f.post(t, `{ "queue":"low", "payload":{"sleep":"0s","arg":"once"}, "type":"demo:echo" }`, "Idempotency-Key", "order-42")
	if again.status != http.StatusOK {
		t.Fatalf("replay: %d %s", again.status, again.body)
	}
	if again.json(t)["id"] != first.json(t)["id"] || again.header.Get("Location") != first.header.Get("Location") {
		t.Errorf("replay returned another task: %s vs %s", again.body, first.body)
	}
	if n := f.taskCount(t); n != 1 {
		t.Errorf("%d tasks in Redis after the same key twice, want 1", n)
	}
	conflict := f.post(t, `{"type":"demo:echo","payload":{"arg":"other"},"queue":"low"}`, "Idempotency-Key", "order-42")
	if conflict.status != http.StatusConflict {
		t.Fatalf("different body: %d %s", conflict.status, conflict.body)
	}
	if n := f.taskCount(t); n != 1 {
		t.Errorf("%d tasks in Redis after a conflicting key, want 1", n)
	}
	other := f.post(t, body, "Idempotency-Key", "order-43")
	if other.status != http.StatusAccepted || f.taskCount(t) != 2 {
		t.Errorf("another key should enqueue: %d, %d tasks", other.status, f.taskCount(t))
	}
}

func TestIdempotencyConcurrent(t *testing.T) {
	t.Parallel()
	f := setup(t)
	body := `{"type":"demo:echo","payload":{"arg":"race","sleep":"0s"}}`
	codes := make(chan int, 8)
	for range 8 {
		go func() {
			req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/api/v1/tasks", strings.NewReader(body))
			req.Header.Set("Idempotency-Key", "same")
			resp, err := testsupport.HTTPClient().Do(req)
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	accepted := 0
	for range 8 {
		switch c := <-codes; c {
		case http.StatusAccepted:
			accepted++
		case http.StatusOK:
		default:
			t.Errorf("unexpected status %d", c)
		}
	}
	if accepted != 1 || f.taskCount(t) != 1 {
		t.Errorf("accepted %d, tasks %d; want exactly one of each", accepted, f.taskCount(t))
	}
}

func TestGetTaskNotFound(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for _, path := range []string{"/api/v1/queues/high/tasks/nope", "/api/v1/queues/urgent/tasks/nope", "/api/v1/nothing"} {
		res := f.do(t, http.MethodGet, path, nil)
		if res.status != http.StatusNotFound || res.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET %s: %d %s %s", path, res.status, res.header.Get("Content-Type"), res.body)
		}
	}
	f.post(t, `{"type":"demo:echo","queue":"high"}`) // the queue exists now
	if res := f.do(t, http.MethodGet, "/api/v1/queues/high/tasks/nope", nil); res.status != http.StatusNotFound {
		t.Errorf("unknown id in an existing queue: %d", res.status)
	}
}

func TestListTasksAndQueues(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for _, q := range []string{"high", "high", "low"} {
		if res := f.post(t, `{"type":"demo:echo","payload":{"arg":"x"},"queue":"`+q+`"}`); res.status != http.StatusAccepted {
			t.Fatal(res.status)
		}
	}
	res := f.do(t, http.MethodGet, "/api/v1/tasks?state=pending&queue=high&page=1&page_size=1", nil)
	if res.status != http.StatusOK {
		t.Fatalf("%d %s", res.status, res.body)
	}
	page := res.json(t)
	if len(page["tasks"].([]any)) != 1 || page["total"] != float64(2) || page["links"].(map[string]any)["next"] == nil {
		t.Errorf("page 1 of 2 expected: %s", res.body)
	}
	all := f.do(t, http.MethodGet, "/api/v1/tasks", nil).json(t)
	if all["total"] != float64(3) || len(all["tasks"].([]any)) != 3 {
		t.Errorf("all tasks: %v", all)
	}
	for _, bad := range []string{"state=done", "queue=urgent", "page=0", "page_size=1000", "page=x"} {
		if r := f.do(t, http.MethodGet, "/api/v1/tasks?"+bad, nil); r.status != http.StatusUnprocessableEntity {
			t.Errorf("?%s: %d, want 422", bad, r.status)
		}
	}
	qs := f.do(t, http.MethodGet, "/api/v1/queues", nil)
	var body struct {
		Queues []map[string]any `json:"queues"`
	}
	if err := json.Unmarshal(qs.body, &body); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, q := range body.Queues {
		got[q["queue"].(string)] = q["pending"].(float64)
		for _, k := range []string{"size", "active", "scheduled", "retry", "archived", "completed", "processed_today", "failed_today", "latency_seconds", "paused"} {
			if _, ok := q[k]; !ok {
				t.Errorf("queue %v lacks %s", q["queue"], k)
			}
		}
	}
	if got["high"] != 2 || got["low"] != 1 || got["default"] != 0 {
		t.Errorf("pending per queue = %v", got)
	}
	if fin := f.do(t, http.MethodGet, "/finished_tasks", nil); fin.status != http.StatusOK || !bytes.Contains(fin.body, []byte(`"finished_tasks":[]`)) {
		t.Errorf("/finished_tasks with nothing done: %d %s", fin.status, fin.body)
	}
}

func TestDeleteAndCancel(t *testing.T) {
	t.Parallel()
	f := setup(t)
	id := f.post(t, `{"type":"demo:echo","payload":{"arg":"x"},"queue":"low"}`).json(t)["id"].(string)
	if res := f.do(t, http.MethodDelete, "/api/v1/queues/low/tasks/"+id, nil); res.status != http.StatusNoContent {
		t.Fatalf("delete pending: %d %s", res.status, res.body)
	}
	if _, err := f.insp.GetTaskInfo("low", id); err == nil {
		t.Error("task still in Redis after DELETE")
	}
	if res := f.do(t, http.MethodDelete, "/api/v1/queues/low/tasks/"+id, nil); res.status != http.StatusNotFound {
		t.Errorf("second delete: %d", res.status)
	}

	// An active task is cancelled: its handler stops early.
	w, err := worker.New(worker.Options{
		Queues: map[string]int{"high": 1}, Concurrency: 2, ShutdownTimeout: 5 * time.Second, TaskCheckInterval: 10 * time.Millisecond,
		Redis:     f.redis.Client(t),
		Catalogue: tasks.NewCatalogue(),
		Cancels:   f.store,
		Registry:  prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	id = f.post(t, `{"type":"demo:echo","payload":{"arg":"long","sleep":"5m"},"queue":"high","max_retry":0}`).json(t)["id"].(string)
	testsupport.Eventually(t, 10*time.Second, "task active", func() bool {
		ti, err := f.insp.GetTaskInfo("high", id)
		return err == nil && ti.State == asynq.TaskStateActive
	})
	res := f.do(t, http.MethodDelete, "/api/v1/queues/high/tasks/"+id, nil)
	if res.status != http.StatusAccepted || res.json(t)["cancel_requested"] != true {
		t.Fatalf("cancel active: %d %s", res.status, res.body)
	}
	// asynq delivers cancellations over Redis pub/sub, which a just-started
	// worker may not have subscribed to yet: cancelling again is harmless.
	testsupport.Eventually(t, 15*time.Second, "cancelled task archived", func() bool {
		ti, err := f.insp.GetTaskInfo("high", id)
		if err == nil && ti.State == asynq.TaskStateActive {
			// Not DELETE again: once the task is archived it would delete it.
			_ = f.insp.CancelProcessing(id)
			time.Sleep(200 * time.Millisecond)
		}
		return err == nil && ti.State == asynq.TaskStateArchived && strings.Contains(ti.LastErr, "cancel")
	})

	// With retries left, asynq counts the cancellation as a failed attempt
	// and schedules a retry; the retry must end at once, not run again.
	id = f.post(t, `{"type":"demo:echo","payload":{"arg":"again","sleep":"5m"},"queue":"high","max_retry":3}`).json(t)["id"].(string)
	testsupport.Eventually(t, 10*time.Second, "second task active", func() bool {
		ti, err := f.insp.GetTaskInfo("high", id)
		return err == nil && ti.State == asynq.TaskStateActive
	})
	if res := f.do(t, http.MethodDelete, "/api/v1/queues/high/tasks/"+id, nil); res.status != http.StatusAccepted {
		t.Fatalf("cancel second task: %d %s", res.status, res.body)
	}
	testsupport.Eventually(t, 15*time.Second, "cancelled task out of active", func() bool {
		ti, err := f.insp.GetTaskInfo("high", id)
		if err == nil && ti.State == asynq.TaskStateActive {
			_ = f.insp.CancelProcessing(id)
			time.Sleep(200 * time.Millisecond)
		}
		return err == nil && ti.State == asynq.TaskStateRetry
	})
	if err := f.insp.RunTask("high", id); err != nil { // skip the back-off
		t.Fatal(err)
	}
	testsupport.Eventually(t, 15*time.Second, "retried cancelled task archived without running", func() bool {
		ti, err := f.insp.GetTaskInfo("high", id)
		return err == nil && ti.State == asynq.TaskStateArchived && strings.Contains(ti.LastErr, "cancelled on request")
	})
}

func TestRedisDown(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.redis.Stop()
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPost, "/api/v1/tasks", `{"type":"demo:echo","payload":{"arg":"x"}}`},
		{http.MethodGet, "/api/v1/queues", ""},
		{http.MethodGet, "/api/v1/tasks", ""},
		{http.MethodGet, "/api/v1/queues/high/tasks/x", ""},
	} {
		start := time.Now()
		res := f.do(t, c.method, c.path, strings.NewReader(c.body))
		if res.status != http.StatusServiceUnavailable || res.header.Get("Retry-After") == "" {
			t.Errorf("%s %s with Redis down: %d Retry-After=%q %s", c.method, c.path, res.status, res.header.Get("Retry-After"), res.body)
		}
		if bytes.Contains(res.body, []byte("127.0.0.1")) || bytes.Contains(res.body, []byte("refused")) {
			t.Errorf("internal error text leaked: %s", res.body)
		}
		t.Logf("%s %s answered in %s", c.method, c.path, time.Since(start).Round(time.Millisecond))
	}
	// Validation still answers 422 without Redis: the client's mistake is not an outage.
	if res := f.post(t, `{"type":"demo:nope"}`); res.status != http.StatusUnprocessableEntity {
		t.Errorf("invalid request with Redis down: %d", res.status)
	}
}

func TestIdempotencyRecovers(t *testing.T) {
	t.Parallel()
	f := setup(t)
	body := `{"type":"demo:echo","payload":{"arg":"r","sleep":"0s"}}`
	first := f.post(t, body, "Idempotency-Key", "gone")
	id := first.json(t)["id"].(string)
	if err := f.insp.DeleteTask("default", id); err != nil {
		t.Fatal(err)
	}
	if res := f.post(t, body, "Idempotency-Key", "gone"); res.status != http.StatusGone {
		t.Errorf("replay of a deleted task: %d %s, want 410", res.status, res.body)
	}
	if n := f.taskCount(t); n != 0 {
		t.Errorf("a replay re-enqueued a finished task: %d tasks", n)
	}
}

func TestListShowsNewestFirst(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var ids []string
	for i := range 30 {
		res := f.post(t, fmt.Sprintf(`{"type":"demo:echo","payload":{"arg":"n%d"},"queue":"high"}`, i))
		ids = append(ids, res.json(t)["id"].(string))
	}
	var page struct {
		Tasks []struct {
			ID string `json:"id"`
		} `json:"tasks"`
		Total int `json:"total"`
	}
	if err := json.Unmarshal(f.do(t, http.MethodGet, "/api/v1/tasks?queue=high&page_size=5", nil).body, &page); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tk := range page.Tasks {
		got = append(got, tk.ID)
	}
	want := []string{ids[29], ids[28], ids[27], ids[26], ids[25]}
	if diff := cmp.Diff(want, got); diff != "" || page.Total != 30 {
		t.Errorf("newest page (-want +got):\n%s\ntotal %d", diff, page.Total)
	}
	if err := json.Unmarshal(f.do(t, http.MethodGet, "/api/v1/tasks?queue=high&page_size=5&page=6", nil).body, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Tasks) != 5 || page.Tasks[4].ID != ids[0] {
		t.Errorf("last page should end with the oldest task")
	}
}

func TestQueuesSurviveRedisDataLoss(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.post(t, `{"type":"demo:echo","queue":"low"}`)
	if err := f.rc.FlushAll(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	// The app's asynq client believes "low" is registered; it is not any more.
	id := f.post(t, `{"type":"demo:echo","queue":"low"}`).json(t)["id"].(string)
	if res := f.do(t, http.MethodGet, "/api/v1/queues/low/tasks/"+id, nil); res.status != http.StatusOK {
		t.Errorf("task after data loss: %d %s", res.status, res.body)
	}
	var body struct {
		Queues []struct {
			Queue   string `json:"queue"`
			Pending int    `json:"pending"`
		} `json:"queues"`
	}
	if err := json.Unmarshal(f.do(t, http.MethodGet, "/api/v1/queues", nil).body, &body); err != nil {
		t.Fatal(err)
	}
	for _, q := range body.Queues {
		if q.Queue == "low" && q.Pending != 1 {
			t.Errorf("low shows %d pending after data loss, want 1", q.Pending)
		}
	}
}

func TestHardening(t *testing.T) {
	t.Parallel()
	f := setup(t)
	// A wrong method on a known path: 405 with Allow, as problem+json.
	for path, allow := range map[string]string{
		"/api/v1/tasks":                 "GET, POST, HEAD",
		"/api/v1/queues/high/tasks/abc": "GET, DELETE, HEAD",
		"/api/v1/queues":                "GET, HEAD",
		"/tasks":                        "POST",
	} {
		res := f.do(t, http.MethodPut, path, strings.NewReader("{}"))
		if res.status != http.StatusMethodNotAllowed || res.header.Get("Allow") != allow {
			t.Errorf("PUT %s = %d Allow %q, want 405 Allow %q", path, res.status, res.header.Get("Allow"), allow)
		}
	}
	if res := f.do(t, http.MethodPut, "/api/v1/queues/high/tasks/abc", nil); res.header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("API 405 is %q, want problem+json", res.header.Get("Content-Type"))
	}
	// No directory listing.
	for _, p := range []string{"/static/", "/static"} {
		if res := f.do(t, http.MethodGet, p, nil); res.status == http.StatusOK {
			t.Errorf("GET %s = 200: %.100s", p, res.body)
		}
	}
	if res := f.do(t, http.MethodGet, "/static/app.css", nil); res.status != http.StatusOK {
		t.Errorf("the stylesheet: %d", res.status)
	}
	// A cross-origin write is refused with a problem document.
	res := f.do(t, http.MethodPost, "/api/v1/tasks", strings.NewReader(`{"type":"demo:echo"}`),
		"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
	if res.status != http.StatusForbidden || res.header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("cross-origin POST = %d %q", res.status, res.header.Get("Content-Type"))
	}
	// A form over 1 MiB: 413.
	big := "arg=" + strings.Repeat("x", web.MaxBodyBytes) + "&sleep=0s&queue=high"
	if res := f.do(t, http.MethodPost, "/tasks", strings.NewReader(big), "Content-Type", "application/x-www-form-urlencoded"); res.status != http.StatusRequestEntityTooLarge {
		t.Errorf("big form = %d, want 413", res.status)
	}
	// A null body, and invalid UTF-8 in a payload.
	if res := f.post(t, `null`); res.status != http.StatusBadRequest {
		t.Errorf("null body = %d, want 400", res.status)
	}
	if res := f.post(t, "{\"type\":\"demo:echo\",\"payload\":{\"arg\":\"\xff\"}}"); res.status != http.StatusUnprocessableEntity || !hasField(res.json(t), "payload") {
		t.Errorf("invalid UTF-8 payload = %d %s, want 422 naming payload", res.status, res.body)
	}
	if n := f.taskCount(t); n != 0 {
		t.Errorf("%d tasks enqueued by refused requests", n)
	}
}

func TestBatch(t *testing.T) {
	t.Parallel()
	f := setup(t)
	body := `{"tasks":[
		{"type":"demo:echo","payload":{"arg":"a"},"queue":"high"},
		{"type":"demo:nope"},
		{"type":"demo:echo","payload":{"arg":"b","sleep":"never"}},
		{"type":"demo:echo","max_retry":"x"},
		{"type":"demo:echo","payload":{"arg":"c"},"idempotency_key":"k-1"},
		{"type":"demo:echo","payload":{"arg":"c"},"idempotency_key":"k-1"},
		{"type":"demo:fail","colour":"red"}
	]}`
	res := f.do(t, http.MethodPost, "/api/v1/batches", strings.NewReader(body))
	if res.status != http.StatusMultiStatus {
		t.Fatalf("batch: %d %s", res.status, res.body)
	}
	var out struct {
		Results []struct {
			Index  int    `json:"index"`
			Status int    `json:"status"`
			ID     string `json:"id"`
			Errors []tasks.FieldError
		} `json:"results"`
	}
	if err := json.Unmarshal(res.body, &out); err != nil {
		t.Fatal(err)
	}
	var statuses []int
	for i, r := range out.Results {
		if r.Index != i {
			t.Errorf("result %d has index %d", i, r.Index)
		}
		statuses = append(statuses, r.Status)
	}
	// The repeated idempotency key gives the first task (200) or, racing
	// it, a 409 for a claim still being enqueued; either way one task.
	want := []int{202, 422, 422, 400, 202, 200, 400}
	// The two items with one key run at once: one creates (202), the other
	// gets that task (200), in either order.
	if pair := []int{statuses[4], statuses[5]}; !(pair[0] == 202 && pair[1] == 200) && !(pair[0] == 200 && pair[1] == 202) {
		t.Errorf("idempotency within a batch: %v", statuses)
	}
	statuses[4], statuses[5] = want[4], want[5]
	if diff := cmp.Diff(want, statuses); diff != "" {
		t.Errorf("statuses (-want +got):\n%s\n%s", diff, res.body)
	}
	if out.Results[2].Errors[0].Field != "payload.sleep" || out.Results[3].Errors[0].Field != "max_retry" {
		t.Errorf("refused items must name their field: %s", res.body)
	}
	if n := f.taskCount(t); n != 2 {
		t.Errorf("%d tasks in Redis, want 2", n)
	}
	for _, bad := range []string{`{"tasks":[]}`, `{"tasks":` + strings.Repeat(`{"type":"demo:echo"},`, web.MaxBatchItems) + `{"type":"demo:echo"}]}`, `{"items":[]}`, `[]`} {
		if r := f.do(t, http.MethodPost, "/api/v1/batches", strings.NewReader(bad)); r.status != 422 && r.status != 400 {
			t.Errorf("batch %.40s…: %d", bad, r.status)
		}
	}
}

func TestSearchAPIAndPage(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var fails []string
	for i := range 30 {
		typ := "demo:echo"
		if i%3 == 0 {
			typ = "demo:fail"
		}
		id := f.post(t, fmt.Sprintf(`{"type":%q,"queue":"low"}`, typ)).json(t)["id"].(string)
		if typ == "demo:fail" {
			fails = append(fails, id)
		}
	}
	res := f.do(t, http.MethodGet, "/api/v1/tasks?type=demo:fail&page_size=4", nil)
	if res.status != 200 {
		t.Fatalf("search: %d %s", res.status, res.body)
	}
	var page struct {
		Tasks []struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		} `json:"tasks"`
		Scanned   int    `json:"scanned"`
		Truncated bool   `json:"truncated"`
		Cursor    string `json:"cursor"`
		Links     struct {
			Next string `json:"next"`
		} `json:"links"`
	}
	got := map[string]bool{}
	for next := "/api/v1/tasks?type=demo:fail&page_size=4"; next != ""; {
		res := f.do(t, http.MethodGet, next, nil)
		page.Links.Next = ""
		if err := json.Unmarshal(res.body, &page); err != nil {
			t.Fatal(err)
		}
		for _, tk := range page.Tasks {
			if tk.Type != "demo:fail" || got[tk.ID] {
				t.Errorf("bad or repeated match %+v", tk)
			}
			got[tk.ID] = true
		}
		if len(got) > 20 {
			t.Fatal("the search does not end")
		}
		next = page.Links.Next
	}
	if len(got) != len(fails) {
		t.Errorf("found %d failing tasks, want %d", len(got), len(fails))
	}
	for _, bad := range []string{"type=demo:nope", "since=yesterday", "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "cursor=1.2", "q=x&cursor=nonsense", "q=" + strings.Repeat("x", 201)} {
		if r := f.do(t, http.MethodGet, "/api/v1/tasks?"+bad, nil); r.status != http.StatusUnprocessableEntity {
			t.Errorf("?%s: %d, want 422", bad, r.status)
		}
	}
	// The page searches without JavaScript: a GET form, results and a link on.
	pageRes := f.do(t, http.MethodGet, "/?type=demo:fail&page_size=4", nil)
	body := string(pageRes.body)
	if pageRes.status != 200 || !strings.Contains(body, `id="filter-q"`) || !strings.Contains(body, `data-search="true"`) ||
		strings.Count(body, `<tr data-id=`) != 4 || !strings.Contains(body, "More matches") {
		t.Errorf("search page: %d\n%.2000s", pageRes.status, body)
	}
}

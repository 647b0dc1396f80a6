package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"taskstack/internal/tasks"
	"taskstack/internal/testsupport"
	"taskstack/internal/worker"
)

// auditLine is one audit=true log line.
type auditLine struct {
	Audit        bool     `json:"audit"`
	Actor        string   `json:"actor"`
	Via          string   `json:"via"`
	Action       string   `json:"action"`
	Outcome      string   `json:"outcome"`
	Queue        string   `json:"queue"`
	TaskID       string   `json:"task_id"`
	TaskIDs      []string `json:"task_ids"`
	TaskType     string   `json:"task_type"`
	Count        int      `json:"count"`
	PayloadBytes int      `json:"payload_bytes"`
	Remote       string   `json:"remote"`
	Status       int      `json:"status"`
	Detail       string   `json:"detail"`
}

// auditLines returns the audit lines logged so far, failing the test on
// one that is not JSON.
func (f *authFixture) auditLines(t *testing.T) []auditLine {
	t.Helper()
	var out []auditLine
	for _, l := range f.logs.Lines(`"audit":true`) {
		var a auditLine
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("audit line is not JSON: %v\n%s", err, l)
		}
		out = append(out, a)
	}
	return out
}

// TestAuditTrail: every mutation through the app leaves exactly one audit
// line naming its actor, what it changed, from where and how it ended,
// refused ones included, and never the payload.
func TestAuditTrail(t *testing.T) {
	t.Parallel()
	f := setupAuth(t, nil)
	const secret = "do-not-log-this-argument"
	body := `{"type":"demo:echo","payload":{"arg":"` + secret + `","sleep":"0s"},"queue":"low"}`

	type step struct {
		name   string
		do     func() response
		status int
		want   auditLine
	}
	var created, batchIDs []string
	steps := []step{
		{"submit", func() response {
			return f.do(t, http.MethodPost, "/api/v1/tasks", strings.NewReader(body), f.as("writer")...)
		},
			http.StatusAccepted, auditLine{Actor: "writer", Via: "token", Action: "submit", Outcome: "ok", Queue: "low", TaskType: tasks.TypeEcho, PayloadBytes: 47, Status: 202}},
		{"submit without the scope", func() response {
			return f.do(t, http.MethodPost, "/api/v1/tasks", strings.NewReader(body), f.as("reader")...)
		},
			http.StatusForbidden, auditLine{Actor: "reader", Via: "token", Action: "submit", Outcome: "denied", Status: 403}},
		{"submit without a credential", func() response { return f.do(t, http.MethodPost, "/api/v1/tasks", strings.NewReader(body)) },
			http.StatusUnauthorized, auditLine{Actor: "anonymous", Action: "submit", Outcome: "denied", Status: 401}},
		{"submit invalid", func() response {
			return f.do(t, http.MethodPost, "/api/v1/tasks", strings.NewReader(`{"type":"demo:echo","payload":{"arg":"x","sleep":"soon"}}`), f.as("writer")...)
		}, http.StatusUnprocessableEntity, auditLine{Actor: "writer", Via: "token", Action: "submit", Outcome: "rejected", Queue: "default", TaskType: tasks.TypeEcho, PayloadBytes: 26, Status: 422}},
		{"form submit", func() response {
			form := url.Values{"arg": {secret}, "sleep": {"0s"}, "queue": {"high"}}
			return f.do(t, http.MethodPost, "/tasks", strings.NewReader(form.Encode()), append(f.as("writer"), "Content-Type", "application/x-www-form-urlencoded")...)
		}, http.StatusOK /* the client follows the 303 to the page */, auditLine{Actor: "writer", Via: "token", Action: "submit", Outcome: "ok", Queue: "high", TaskType: tasks.TypeEcho, PayloadBytes: 47, Status: 303}},
		{"batch", func() response {
			return f.do(t, http.MethodPost, "/api/v1/batches", strings.NewReader(`{"tasks":[`+body+`,`+body+`,{"type":"demo:nope"}]}`), f.as("writer")...)
		}, http.StatusMultiStatus, auditLine{Actor: "writer", Via: "token", Action: "batch", Outcome: "ok", Count: 3, PayloadBytes: 2*len(body) + 20, Status: 207, Detail: "202:2 422:1"}},
	}
	for _, s := range steps {
		before := len(f.auditLines(t))
		res := s.do()
		if res.status != s.status {
			t.Fatalf("%s: HTTP %d, want %d: %s", s.name, res.status, s.status, res.body)
		}
		lines := f.auditLines(t)[before:]
		if len(lines) != 1 {
			t.Fatalf("%s: %d audit lines, want 1: %+v", s.name, len(lines), lines)
		}
		got := lines[0]
		if got.Remote != "127.0.0.1" {
			t.Errorf("%s: remote %q, want 127.0.0.1", s.name, got.Remote)
		}
		switch s.name {
		case "submit", "form submit":
			if got.TaskID == "" {
				t.Errorf("%s: no task_id", s.name)
			}
			created = append(created, got.TaskID)
		case "batch":
			if len(got.TaskIDs) != 2 {
				t.Errorf("batch: task_ids %v, want the 2 created", got.TaskIDs)
			}
			batchIDs = got.TaskIDs
		}
		got.Remote, got.TaskID, got.TaskIDs, got.Audit = "", "", nil, false
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Errorf("%s: audit line (-want +got):\n%s", s.name, diff)
		}
	}
	for _, l := range f.logs.Lines(secret) {
		t.Errorf("a log line carries the payload: %s", l)
	}

	// Delete a pending task (its type is read first), then cancel a running
	// one: each is one line, the action saying which happened.
	id := created[0]
	if res := f.do(t, http.MethodDelete, "/api/v1/queues/low/tasks/"+id, nil, f.as("writer")...); res.status != http.StatusForbidden {
		t.Fatalf("writer deletes: %d", res.status)
	}
	if res := f.do(t, http.MethodDelete, "/api/v1/queues/low/tasks/"+id, nil, f.as("admin")...); res.status != http.StatusNoContent {
		t.Fatalf("admin deletes: %d %s", res.status, res.body)
	}
	w, err := worker.New(worker.Options{
		Queues: map[string]int{"low": 1}, Concurrency: 1, ShutdownTimeout: 5 * time.Second, TaskCheckInterval: 10 * time.Millisecond,
		Redis: f.redis.Client(t), Catalogue: tasks.NewCatalogue(), Cancels: f.store, Registry: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	long := f.do(t, http.MethodPost, "/api/v1/tasks", strings.NewReader(`{"type":"demo:echo","payload":{"arg":"x","sleep":"5m"},"queue":"low","max_retry":0}`), f.as("writer")...).json(t)["id"].(string)
	// Only the long task is left on low (the others were deleted or are on
	// high): the worker starts it.
	for _, bid := range batchIDs {
		f.do(t, http.MethodDelete, "/api/v1/queues/low/tasks/"+bid, nil, f.as("admin")...)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	insp := asynq.NewInspectorFromRedisClient(f.redis.Client(t))
	testsupport.Eventually(t, 10*time.Second, "the long task active", func() bool {
		ti, err := insp.GetTaskInfo("low", long)
		return err == nil && ti.State == asynq.TaskStateActive
	})
	if res := f.do(t, http.MethodDelete, "/api/v1/queues/low/tasks/"+long, nil, f.as("admin")...); res.status != http.StatusAccepted {
		t.Fatalf("cancel: %d %s", res.status, res.body)
	}
	var deletes []auditLine
	for _, a := range f.auditLines(t) {
		if a.Action == "delete" || a.Action == "cancel" {
			deletes = append(deletes, a)
		}
	}
	want := []auditLine{
		{Actor: "writer", Action: "delete", Outcome: "denied", Queue: "", TaskID: "", Status: 403},
		{Actor: "admin", Action: "delete", Outcome: "ok", Queue: "low", TaskID: id, TaskType: tasks.TypeEcho, Status: 204},
		{Actor: "admin", Action: "delete", Outcome: "ok", Queue: "low", TaskID: batchIDs[0], TaskType: tasks.TypeEcho, Status: 204},
		{Actor: "admin", Action: "delete", Outcome: "ok", Queue: "low", TaskID: batchIDs[1], TaskType: tasks.TypeEcho, Status: 204},
		{Actor: "admin", Action: "cancel", Outcome: "ok", Queue: "low", TaskID: long, TaskType: tasks.TypeEcho, Status: 202},
	}
	if len(deletes) != len(want) {
		t.Fatalf("%d delete/cancel lines, want %d: %+v", len(deletes), len(want), deletes)
	}
	for i, got := range deletes {
		got.Remote, got.Via, got.Audit = "", "", false
		if diff := cmp.Diff(want[i], got); diff != "" {
			t.Errorf("delete/cancel line %d (-want +got):\n%s", i, diff)
		}
	}

	// The counter agrees with the lines.
	for _, c := range []struct {
		action, outcome string
		want            float64
	}{{"submit", "ok", 3}, {"submit", "denied", 2}, {"submit", "rejected", 1}, {"batch", "ok", 1}, {"delete", "ok", 3}, {"delete", "denied", 1}, {"cancel", "ok", 1}} {
		if got := testutil.ToFloat64(counterWith(t, f.reg, "taskstack_audit_events_total", c.action, c.outcome)); got != c.want {
			t.Errorf("taskstack_audit_events_total{action=%s,outcome=%s} = %v, want %v", c.action, c.outcome, got, c.want)
		}
	}
}

// counterWith returns one series of a counter vector by its label values,
// in the order the metric declares them.
func counterWith(t *testing.T, reg *prometheus.Registry, name string, values ...string) prometheus.Collector {
	t.Helper()
	return collectorFunc(func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		metrics:
			for _, m := range mf.GetMetric() {
				for i, l := range m.GetLabel() {
					if i >= len(values) || l.GetValue() != values[i] {
						continue metrics
					}
				}
				return m.GetCounter().GetValue()
			}
		}
		return -1
	})
}

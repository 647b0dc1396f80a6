package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"taskstack/internal/store"
	"taskstack/internal/testsupport"
	"taskstack/internal/web"
)

// TestTaskDetail: one task's answer joins its state, its attempts (as the
// worker records them), a timeline in order, the retries left, its trace
// ID with the trace link (only when sampled), the logs link or command,
// and the page shows the same.
func TestTaskDetail(t *testing.T) {
	t.Parallel()
	r := testsupport.StartRedis(t)
	rc := redis.NewClient(&redis.Options{Addr: r.Addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rc.Close() })
	serve := func(o web.Options) (*httptest.Server, *store.Store) {
		o.Registry = prometheus.NewRegistry()
		app, st := newApp(t, rc, o)
		srv := httptest.NewServer(app)
		t.Cleanup(srv.Close)
		return srv, st
	}
	srv, st := serve(web.Options{TraceURLTemplate: "http://jaeger.test/trace/{trace_id}", LogsCommandTemplate: "docker compose logs worker | grep -F {task_id}"})
	f := &fixture{srv: srv, store: st}
	const sampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	res := f.post(t, `{"type":"demo:echo","payload":{"arg":"x","sleep":"0s"},"queue":"default","max_retry":4}`, "traceparent", sampled)
	id := res.json(t)["id"].(string)
	start := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	if err := st.RecordAttempts(context.Background(), []store.Attempt{
		{Queue: "default", TaskID: id, N: 1, StartedAt: start, FinishedAt: start.Add(1500 * time.Millisecond), Error: "boom", Worker: "w1"},
	}); err != nil {
		t.Fatal(err)
	}

	var got struct {
		State        string `json:"state"`
		RetriesLeft  *int   `json:"retries_left"`
		TraceID      string `json:"trace_id"`
		TraceSampled bool   `json:"trace_sampled"`
		LogsCommand  string `json:"logs_command"`
		Links        struct {
			Trace string `json:"trace"`
			Logs  string `json:"logs"`
		} `json:"links"`
		Attempts []struct {
			Attempt         int       `json:"attempt"`
			StartedAt       time.Time `json:"started_at"`
			DurationSeconds float64   `json:"duration_seconds"`
			Error           string    `json:"error"`
			Worker          string    `json:"worker"`
		} `json:"attempts"`
		Timeline []struct {
			Event   string `json:"event"`
			Attempt int    `json:"attempt"`
			Error   string `json:"error"`
		} `json:"timeline"`
	}
	body := f.do(t, http.MethodGet, "/api/v1/queues/default/tasks/"+id, nil)
	if err := json.Unmarshal(body.body, &got); err != nil {
		t.Fatal(err)
	}
	if got.State != "pending" || got.RetriesLeft == nil || *got.RetriesLeft != 4 {
		t.Errorf("state %s, retries left %v; want pending with 4", got.State, got.RetriesLeft)
	}
	if got.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || !got.TraceSampled || got.Links.Trace != "http://jaeger.test/trace/4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("trace %q sampled %v link %q", got.TraceID, got.TraceSampled, got.Links.Trace)
	}
	if got.LogsCommand != "docker compose logs worker | grep -F "+id || got.Links.Logs != "" {
		t.Errorf("logs command %q, link %q", got.LogsCommand, got.Links.Logs)
	}
	if len(got.Attempts) != 1 || got.Attempts[0].Attempt != 1 || got.Attempts[0].DurationSeconds != 1.5 || got.Attempts[0].Error != "boom" ||
		got.Attempts[0].Worker != "w1" || !got.Attempts[0].StartedAt.Equal(start) {
		t.Errorf("attempts %+v", got.Attempts)
	}
	var events []string
	for _, e := range got.Timeline {
		events = append(events, e.Event)
	}
	if diff := cmp.Diff([]string{"enqueued", "attempt_started", "attempt_failed"}, events); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}

	page := string(f.do(t, http.MethodGet, "/tasks/default/"+id, nil).body)
	for _, want := range []string{`href="http://jaeger.test/trace/4bf92f3577b34da6a3ce929d0e0e4736"`, "Attempt 1 failed", "<samp class=\"err\">boom</samp>", "1.5s", "docker compose logs worker | grep -F " + id, `id="detail-retries_left">4<`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}

	// Unsampled: the ID without a link. A logs link replaces the command.
	srv2, _ := serve(web.Options{TraceURLTemplate: "http://jaeger.test/trace/{trace_id}", LogsURLTemplate: "http://grafana.test/explore?q={task_id}&t={trace_id}"})
	f2 := &fixture{srv: srv2}
	id2 := f2.post(t, `{"type":"demo:echo","payload":{"arg":"y"}}`, "traceparent", strings.TrimSuffix(sampled, "01")+"00").json(t)["id"].(string)
	got.Links.Trace, got.LogsCommand = "", ""
	if err := json.Unmarshal(f2.do(t, http.MethodGet, "/api/v1/queues/default/tasks/"+id2, nil).body, &got); err != nil {
		t.Fatal(err)
	}
	if got.TraceSampled || got.Links.Trace != "" || got.TraceID == "" {
		t.Errorf("unsampled trace: id %q sampled %v link %q", got.TraceID, got.TraceSampled, got.Links.Trace)
	}
	if want := "http://grafana.test/explore?q=" + id2 + "&t=" + got.TraceID; got.Links.Logs != want || got.LogsCommand != "" {
		t.Errorf("logs link %q command %q, want %q", got.Links.Logs, got.LogsCommand, want)
	}
}

package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"taskstack/internal/store"
	"taskstack/internal/testsupport"
)

// TestScheduleOnThePageAndAPI: what the workers publish shows on the page
// (a section only when there is a schedule) and at GET /api/v1/schedule.
func TestScheduleOnThePageAndAPI(t *testing.T) {
	t.Parallel()
	f := setup(t)
	if body := string(f.do(t, http.MethodGet, "/", nil).body); strings.Contains(body, "Periodic tasks") {
		t.Error("the page shows a schedule section although no worker runs one")
	}
	last := time.Now().Add(-40 * time.Second).Truncate(time.Second).UTC()
	next := last.Add(time.Minute)
	err := f.store.PublishSchedule(context.Background(), []store.ScheduleEntry{
		{Name: "heartbeat", Cron: "@every 1m", Type: "demo:echo", Queue: "low", Enabled: true,
			LastRun: last, LastTaskID: "sched:heartbeat:" + jsonNumber(last.Unix()), NextRun: next},
		{Name: "nightly", Cron: "0 3 * * *", Timezone: "Europe/Paris", Type: "demo:fail", Queue: "low"},
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	// The page reads the schedule as a snapshot, at most a second old.
	var body string
	testsupport.Eventually(t, 5*time.Second, "the schedule on the page", func() bool {
		body = string(f.do(t, http.MethodGet, "/", nil).body)
		return strings.Contains(body, "Periodic tasks")
	})
	for _, want := range []string{
		`<h2 id="schedule-title">Periodic tasks</h2>`,
		`<th scope="row">heartbeat</th>`, `<code>@every 1m</code>`,
		`href="/tasks/low/sched:heartbeat:` + jsonNumber(last.Unix()) + `"`, "s ago</time>", ">in ",
		`<th scope="row">nightly</th>`, `<small>Europe/Paris</small>`, ">disabled<",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}

	var got struct {
		Entries []map[string]any `json:"entries"`
	}
	if err := json.Unmarshal(f.do(t, http.MethodGet, "/api/v1/schedule", nil).body, &got); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"name": "heartbeat", "cron": "@every 1m", "type": "demo:echo", "queue": "low", "enabled": true,
			"last_run": last.Format(time.RFC3339), "next_run": next.Format(time.RFC3339),
			"last_task_id": "sched:heartbeat:" + jsonNumber(last.Unix()),
			"links":        map[string]any{"last_task": "/api/v1/queues/low/tasks/sched:heartbeat:" + jsonNumber(last.Unix())}},
		{"name": "nightly", "cron": "0 3 * * *", "timezone": "Europe/Paris", "type": "demo:fail", "queue": "low", "enabled": false,
			"last_run": nil, "next_run": nil, "links": map[string]any{}},
	}
	if diff := cmp.Diff(want, got.Entries); diff != "" {
		t.Errorf("GET /api/v1/schedule (-want +got):\n%s", diff)
	}
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }

package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"taskstack/internal/audit"
)

func TestOutcomeOf(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]string{200: "ok", 204: "ok", 207: "ok", 303: "ok", 400: "rejected", 401: "denied", 403: "denied", 404: "rejected", 413: "rejected", 422: "rejected", 429: "rejected", 500: "error", 503: "error"} {
		if got := audit.OutcomeOf(status); got != want {
			t.Errorf("OutcomeOf(%d) = %s, want %s", status, got, want)
		}
	}
}

// TestRecord: one JSON line with audit=true and only the fields set; the
// counter by action and outcome, shared by two recorders on one registry
// (devstack); a nil recorder records nothing and does not panic.
func TestRecord(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	reg := prometheus.NewRegistry()
	a, err := audit.New(slog.New(slog.NewJSONHandler(&buf, nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := audit.New(slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatalf("a second recorder on one registry: %v", err)
	}
	a.Precreate(audit.Submit)
	a.Record(context.Background(), audit.Event{Actor: "ci", Via: "token", Action: audit.Submit, Queue: "high", TaskID: "t1", TaskType: "demo:echo", PayloadBytes: 12, Remote: "10.0.0.1", Outcome: audit.OK, Status: 202})
	b.Record(context.Background(), audit.Event{Action: audit.Submit, Outcome: audit.Denied, Status: 401})
	var nilRec *audit.Recorder
	nilRec.Record(context.Background(), audit.Event{Action: audit.Submit, Outcome: audit.OK})

	var line map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &line); err != nil {
		t.Fatalf("not one JSON line: %v\n%s", err, buf.String())
	}
	for k, v := range map[string]any{"audit": true, "actor": "ci", "via": "token", "action": "submit", "outcome": "ok", "queue": "high",
		"task_id": "t1", "task_type": "demo:echo", "payload_bytes": 12.0, "remote": "10.0.0.1", "status": 202.0, "level": "INFO"} {
		if line[k] != v {
			t.Errorf("%s = %v, want %v", k, line[k], v)
		}
	}
	for _, k := range []string{"count", "detail", "task_ids"} {
		if _, ok := line[k]; ok {
			t.Errorf("unset field %s logged", k)
		}
	}
	if got := counter(t, reg, "ok"); got != 1 {
		t.Errorf("submit/ok = %v", got)
	}
	if got := counter(t, reg, "denied"); got != 1 {
		t.Errorf("submit/denied = %v (the second recorder's)", got)
	}
	if n := testutil.CollectAndCount(reg); n != len(audit.Outcomes) {
		t.Errorf("%d series, want the %d precreated for submit", n, len(audit.Outcomes))
	}
}

func counter(t *testing.T, reg *prometheus.Registry, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if mf.GetName() == "taskstack_audit_events_total" && l["action"] == audit.Submit && l["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no submit/%s series", outcome)
	return 0
}

package monitor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"taskstack/internal/tasks"
)

type auditLine struct {
	Actor    string   `json:"actor"`
	Via      string   `json:"via"`
	Action   string   `json:"action"`
	Outcome  string   `json:"outcome"`
	Queue    string   `json:"queue"`
	TaskID   string   `json:"task_id"`
	TaskIDs  []string `json:"task_ids"`
	TaskType string   `json:"task_type"`
	Count    int      `json:"count"`
	Status   int      `json:"status"`
	Detail   string   `json:"detail"`
	Remote   string   `json:"remote"`
}

// TestAuditOfDashboardMutations: every mutating call through the
// dashboard (run, archive, delete, cancel, pause, unpause, their batch and
// all forms) is one audit line with the basic-auth user as actor, refused
// calls included; reads are not audited.
func TestAuditOfDashboardMutations(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	pending := b.enqueue(t, "default", 4)
	archived := b.enqueue(t, "low", 1)[0]
	if err := b.inspector.ArchiveTask("low", archived); err != nil {
		t.Fatal(err)
	}
	api := "/api/queues/"
	batch := func(path string, ids ...string) (int, []byte) {
		t.Helper()
		body, _ := json.Marshal(map[string][]string{"task_ids": ids})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.url+path, bytes.NewReader(body))
		req.SetBasicAuth(testUser, testPassword)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	steps := []struct {
		name string
		do   func() (int, []byte)
		want auditLine
	}{
		{"pause", func() (int, []byte) { return b.do(t, http.MethodPost, api+"default:pause", testUser, testPassword) },
			auditLine{Actor: testUser, Via: "basic", Action: "pause", Outcome: "ok", Queue: "default", Status: 204}},
		{"unpause", func() (int, []byte) { return b.do(t, http.MethodPost, api+"default:resume", testUser, testPassword) },
			auditLine{Actor: testUser, Via: "basic", Action: "unpause", Outcome: "ok", Queue: "default", Status: 204}},
		{"archive one", func() (int, []byte) {
			return b.do(t, http.MethodPost, api+"default/pending_tasks/"+pending[0]+":archive", testUser, testPassword)
		}, auditLine{Actor: testUser, Via: "basic", Action: "archive", Outcome: "ok", Queue: "default", TaskID: pending[0], TaskType: tasks.TypeEcho, Status: 204, Detail: "state pending"}},
		{"run one", func() (int, []byte) {
			return b.do(t, http.MethodPost, api+"low/archived_tasks/"+archived+":run", testUser, testPassword)
		}, auditLine{Actor: testUser, Via: "basic", Action: "run", Outcome: "ok", Queue: "low", TaskID: archived, TaskType: tasks.TypeEcho, Status: 204, Detail: "state archived"}},
		{"delete one", func() (int, []byte) {
			return b.do(t, http.MethodDelete, api+"default/pending_tasks/"+pending[1], testUser, testPassword)
		}, auditLine{Actor: testUser, Via: "basic", Action: "delete", Outcome: "ok", Queue: "default", TaskID: pending[1], TaskType: tasks.TypeEcho, Status: 204, Detail: "state pending"}},
		{"batch delete", func() (int, []byte) { return batch(api+"default/pending_tasks:batch_delete", pending[2]) },
			auditLine{Actor: testUser, Via: "basic", Action: "delete", Outcome: "ok", Queue: "default", TaskIDs: []string{pending[2]}, Count: 1, Status: 200, Detail: "state pending, batch"}},
		{"archive all", func() (int, []byte) {
			return b.do(t, http.MethodPost, api+"default/pending_tasks:archive_all", testUser, testPassword)
		},
			auditLine{Actor: testUser, Via: "basic", Action: "archive", Outcome: "ok", Queue: "default", Status: 200, Detail: "state pending, all"}},
		{"cancel one", func() (int, []byte) {
			return b.do(t, http.MethodPost, api+"default/active_tasks/nope:cancel", testUser, testPassword)
		}, auditLine{Actor: testUser, Via: "basic", Action: "cancel", Outcome: "ok", Queue: "default", TaskID: "nope", Status: 204, Detail: "state active"}},
		{"wrong password", func() (int, []byte) { return b.do(t, http.MethodPost, api+"low:pause", testUser, "guess") },
			auditLine{Actor: testUser, Via: "basic", Action: "pause", Outcome: "denied", Queue: "low", Status: 401}},
		{"no credentials", func() (int, []byte) { return b.do(t, http.MethodPost, api+"low:pause", "-", "") },
			auditLine{Actor: "anonymous", Action: "pause", Outcome: "denied", Queue: "low", Status: 401}},
	}
	for _, s := range steps {
		before := len(b.logs.Lines(`"audit":true`))
		s.do()
		lines := b.logs.Lines(`"audit":true`)[before:]
		if len(lines) != 1 {
			t.Fatalf("%s: %d audit lines, want 1:\n%v", s.name, len(lines), lines)
		}
		var got auditLine
		if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
			t.Fatal(err)
		}
		if got.Remote != "127.0.0.1" {
			t.Errorf("%s: remote %q", s.name, got.Remote)
		}
		got.Remote = ""
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", s.name, diff)
		}
	}
	// Reads leave no line.
	before := len(b.logs.Lines(`"audit":true`))
	b.get(t, api)
	b.get(t, api+"default/pending_tasks")
	if n := len(b.logs.Lines(`"audit":true`)) - before; n != 0 {
		t.Errorf("%d audit lines for reads", n)
	}
}

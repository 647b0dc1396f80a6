package monitor

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"

	"taskstack/internal/audit"
	"taskstack/internal/guard"
	"taskstack/internal/telemetry"
)

// Paths of asynqmon's mutating API calls, under <root>/api/queues/.
var (
	// {queue}, {queue}:pause, {queue}:resume
	queueCall = regexp.MustCompile(`^([^/:]+)(?::(pause|resume))?$`)
	// {queue}/[groups/{group}/]{state}_tasks[/{id}][:{verb}]
	taskCall = regexp.MustCompile(`^([^/]+)/(?:groups/[^/]+/)?([a-z]+)_tasks(?:/([^/:]+))?(?::([a-z_]+))?$`)
)

// mutation is what a dashboard call changes; ok is false for a call that
// changes nothing (a read).
type mutation struct {
	action, queue, state, id string
	// bulk is "batch" (listed task IDs) or "all" (every task in the state).
	bulk string
}

// parseMutation recognises asynqmon's mutating calls by method and path
// (path relative to <root>/api/queues/).
func parseMutation(method, path string) (mutation, bool) {
	if method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions {
		return mutation{}, false
	}
	if m := queueCall.FindStringSubmatch(path); m != nil {
		switch {
		case method == http.MethodDelete && m[2] == "":
			return mutation{action: audit.DeleteQueue, queue: m[1]}, true
		case method == http.MethodPost && m[2] == "pause":
			return mutation{action: audit.Pause, queue: m[1]}, true
		case method == http.MethodPost && m[2] == "resume":
			return mutation{action: audit.Unpause, queue: m[1]}, true
		}
		return mutation{}, false
	}
	m := taskCall.FindStringSubmatch(path)
	if m == nil {
		return mutation{}, false
	}
	mu := mutation{queue: m[1], state: m[2], id: m[3]}
	verb := m[4]
	switch {
	case strings.HasPrefix(verb, "batch_"):
		mu.bulk, verb = "batch", strings.TrimPrefix(verb, "batch_")
	case strings.HasSuffix(verb, "_all"):
		mu.bulk, verb = "all", strings.TrimSuffix(verb, "_all")
	}
	if verb == "" && method == http.MethodDelete && mu.id != "" {
		verb = "delete"
	}
	switch verb {
	case "delete":
		mu.action = audit.Delete
	case "run":
		mu.action = audit.Run
	case "archive":
		mu.action = audit.Archive
	case "cancel":
		mu.action = audit.Cancel
	default:
		return mutation{}, false
	}
	return mu, true
}

// maxAuditedBody bounds the body read to count a batch call's task IDs.
const maxAuditedBody = 1 << 20

// audited writes one audit line per mutating dashboard call, whatever its
// answer (it wraps the credentials check: refused callers are recorded
// too). The actor is the basic-auth user name the call carried.
func (m *Monitor) audited(h http.Handler) http.Handler {
	prefix := m.o.RootPath + "/api/queues/"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, found := strings.CutPrefix(r.URL.Path, prefix)
		mu, ok := parseMutation(r.Method, rest)
		if !found || !ok {
			h.ServeHTTP(w, r)
			return
		}
		e := audit.Event{Action: mu.action, Queue: mu.queue, TaskID: mu.id, Remote: guard.RemoteIP(r)}
		if user, _, ok := r.BasicAuth(); ok && m.o.Username != "" {
			e.Actor, e.Via = user, "basic"
		}
		if mu.state != "" {
			e.Detail = "state " + mu.state
		}
		if mu.bulk != "" {
			e.Detail += ", " + mu.bulk
		}
		if mu.bulk == "batch" {
			e.TaskIDs, r.Body = batchIDs(r.Body)
			e.Count = len(e.TaskIDs)
		}
		if mu.id != "" && m.authorized(r) {
			// Read before the call: a deleted task's type is gone after.
			if ti, err := m.inspector.GetTaskInfo(mu.queue, mu.id); err == nil {
				e.TaskType = ti.Type
			}
		}
		sw := telemetry.NewStatusRecorder(w)
		h.ServeHTTP(sw, r)
		e.Status = sw.Code()
		e.Outcome = audit.OutcomeOf(e.Status)
		m.audit.Record(r.Context(), e)
	})
}

// authorized reports whether r carries the dashboard's credentials (or
// none are configured): only then is Redis read on its behalf.
func (m *Monitor) authorized(r *http.Request) bool {
	if m.o.Username == "" {
		return true
	}
	u, p, ok := r.BasicAuth()
	return ok && credentialsMatch(u, p, m.o.Username, m.o.Password)
}

// batchIDs reads the task IDs of a batch call ({"task_ids": [...]}) and
// returns a body that replays what was read.
func batchIDs(body io.ReadCloser) ([]string, io.ReadCloser) {
	b, _ := io.ReadAll(io.LimitReader(body, maxAuditedBody))
	replay := struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b), body), body}
	var req struct {
		IDs []string `json:"task_ids"`
	}
	_ = json.Unmarshal(b, &req)
	return req.IDs, replay
}

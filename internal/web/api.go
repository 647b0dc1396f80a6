package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"taskstack/internal/audit"
	"taskstack/internal/store"
	"taskstack/internal/tasks"
)

type links struct {
	Self string `json:"self,omitempty"`
	Next string `json:"next,omitempty"`
	Prev string `json:"prev,omitempty"`
	// A task's trace and log lines, when links are configured.
	Trace string `json:"trace,omitempty"`
	Logs  string `json:"logs,omitempty"`
}

type createdTask struct {
	ID    string `json:"id"`
	Queue string `json:"queue"`
	Type  string `json:"type"`
	State string `json:"state"`
	Links links  `json:"links"`
}

func taskPath(queue, id string) string {
	return "/api/v1/queues/" + url.PathEscape(queue) + "/tasks/" + url.PathEscape(id)
}

// createTask enqueues one task: 202 with its Location, or, for a repeated
// Idempotency-Key, 200 with the task the key made first.
func (s *Server) createTask(w http.ResponseWriter, r *http.Request) error {
	if err := s.limitSubmit(r, 1); err != nil {
		return err
	}
	var req tasks.Request
	if err := decodeJSON(w, r, &req); err != nil {
		s.countEnqueue("", "", err)
		return err
	}
	p, err := s.cat.Prepare(req)
	note := auditNote(r.Context())
	note.TaskType, note.Queue, note.PayloadBytes = req.Type, p.Queue, len(req.Payload)
	if err != nil {
		s.countEnqueue(p.Type, p.Queue, err)
		return err
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	var e store.Enqueued
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		e, err = s.store.EnqueueOnce(ctx, key, p)
	} else {
		e, err = s.store.Enqueue(ctx, p)
	}
	note.TaskID = e.ID
	if err != nil {
		note.Detail = err.Error()
	}
	if err == nil && e.Replayed {
		note.Detail = "replayed: the Idempotency-Key's task, not enqueued again"
		return writeCreated(w, http.StatusOK, e)
	}
	s.countEnqueue(p.Type, p.Queue, err)
	if err != nil {
		return err
	}
	s.changed(e.Queue, e.ID)
	return writeCreated(w, http.StatusAccepted, e)
}

func writeCreated(w http.ResponseWriter, status int, e store.Enqueued) error {
	self := taskPath(e.Queue, e.ID)
	w.Header().Set("Location", self)
	return writeJSON(w, status, createdTask{ID: e.ID, Queue: e.Queue, Type: e.Type, State: e.State, Links: links{Self: self}})
}

// taskJSON is a task as the API shows it.
type taskJSON struct {
	ID            string          `json:"id"`
	Queue         string          `json:"queue"`
	Type          string          `json:"type"`
	State         string          `json:"state"`
	Payload       json.RawMessage `json:"payload"`
	Result        *string         `json:"result"`
	LastError     string          `json:"last_error"`
	Retried       int             `json:"retried"`
	MaxRetry      int             `json:"max_retry"`
	Timeout       string          `json:"timeout,omitempty"`
	EnqueuedAt    *time.Time      `json:"enqueued_at"`
	NextProcessAt *time.Time      `json:"next_process_at"`
	LastFailedAt  *time.Time      `json:"last_failed_at"`
	CompletedAt   *time.Time      `json:"completed_at"`
	Links         links           `json:"links"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func toTaskJSON(t store.Task) taskJSON {
	out := taskJSON{
		ID: t.ID, Queue: t.Queue, Type: t.Type, State: t.State,
		LastError: t.LastError, Retried: t.Retried, MaxRetry: t.MaxRetry,
		EnqueuedAt: timePtr(t.EnqueuedAt), NextProcessAt: timePtr(t.NextProcessAt),
		LastFailedAt: timePtr(t.LastFailedAt), CompletedAt: timePtr(t.CompletedAt),
		Links: links{Self: taskPath(t.Queue, t.ID)},
	}
	if t.Timeout > 0 {
		out.Timeout = t.Timeout.String()
	}
	if json.Valid(t.Payload) {
		out.Payload = t.Payload
	} else {
		b, _ := json.Marshal(string(t.Payload))
		out.Payload = b
	}
	if t.State == "completed" || len(t.Result) > 0 {
		res := string(t.Result)
		out.Result = &res
	}
	return out
}

// pathTask reads {queue} and {id}, refusing queues we do not run.
func pathTask(r *http.Request) (queue, id string, err error) {
	return pathTaskOf(r.PathValue("queue"), r.PathValue("id"))
}

func pathTaskOf(queue, id string) (string, string, error) {
	if !tasks.KnownQueue(queue) {
		return "", "", newProblem(http.StatusNotFound, fmt.Sprintf("unknown queue %q", queue))
	}
	if id == "" {
		return "", "", newProblem(http.StatusNotFound, "no such task")
	}
	return queue, id, nil
}

func fieldError(field, msg string) tasks.FieldError {
	return tasks.FieldError{Field: field, Message: msg}
}

// getTask answers a task's snapshot (at most LiveInterval old, fresh after
// a write through this replica), 304 when the client has it.
func (s *Server) getTask(w http.ResponseWriter, r *http.Request) error {
	queue, id, err := pathTask(r)
	if err != nil {
		return err
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	snap, err := s.taskSnapshot(ctx, queue, id)
	if err != nil {
		return err
	}
	return writeSnapshot(w, r, snap)
}

// deleteTask deletes a task that has not run (204) and cancels one that is
// running (202): its handler's context is cancelled and it is not retried.
func (s *Server) deleteTask(w http.ResponseWriter, r *http.Request) error {
	queue, id, err := pathTask(r)
	if err != nil {
		return err
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	note := auditNote(ctx)
	note.Queue, note.TaskID = queue, id
	// Only for the audit line: the type is gone with a deleted task.
	if t, err := s.store.Task(ctx, queue, id); err == nil {
		note.TaskType = t.Type
	}
	d, err := s.store.Delete(ctx, queue, id)
	if err != nil {
		note.Detail = err.Error()
		return err
	}
	s.changed(queue, id)
	if d != store.Deleted {
		note.Action = audit.Cancel
	}
	if d == store.Deleted {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return writeJSON(w, http.StatusAccepted, map[string]any{
		"id": id, "queue": queue, "state": "active", "cancel_requested": true,
		"links": links{Self: taskPath(queue, id)},
	})
}

type queueJSON struct {
	Queue          string  `json:"queue"`
	Size           int     `json:"size"`
	Pending        int     `json:"pending"`
	Active         int     `json:"active"`
	Scheduled      int     `json:"scheduled"`
	Retry          int     `json:"retry"`
	Archived       int     `json:"archived"`
	Completed      int     `json:"completed"`
	ProcessedToday int     `json:"processed_today"`
	FailedToday    int     `json:"failed_today"`
	LatencySeconds float64 `json:"latency_seconds"`
	Paused         bool    `json:"paused"`
}

func toQueuesJSON(qs []store.QueueStats) []queueJSON {
	out := make([]queueJSON, len(qs))
	for i, q := range qs {
		out[i] = queueJSON{
			Queue: q.Queue, Size: q.Size(), Pending: q.Pending, Active: q.Active,
			Scheduled: q.Scheduled, Retry: q.Retry, Archived: q.Archived, Completed: q.Completed,
			ProcessedToday: q.ProcessedToday, FailedToday: q.FailedToday,
			LatencySeconds: q.Latency.Seconds(), Paused: q.Paused,
		}
	}
	return out
}

func (s *Server) listQueues(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := s.requestContext(r)
	defer cancel()
	snap, err := s.queuesSnapshot(ctx)
	if err != nil {
		return err
	}
	return writeSnapshot(w, r, snap)
}

package web

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/hibiken/asynq"

	"taskstack/internal/tasks"
)

// createTaskRequest is the body of POST /api/v1/tasks. Durations are Go
// duration strings ("30s").
type createTaskRequest struct {
	Type      string          `json:"type"`
	Payload   json.RawMessage `json:"payload"`
	Queue     string          `json:"queue"`
	ProcessIn string          `json:"process_in"`
	MaxRetry  *int            `json:"max_retry"`
	Timeout   string          `json:"timeout"`
}

// toRequest converts the body into a catalogue request; duration fields that
// do not parse are reported with the catalogue's own field errors.
func (b createTaskRequest) toRequest() (tasks.Request, *tasks.ValidationError) {
	var verr tasks.ValidationError
	req := tasks.Request{Type: b.Type, Payload: b.Payload, Queue: b.Queue, MaxRetry: b.MaxRetry}
	parse := func(field, v string) time.Duration {
		if v == "" {
			return 0
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			verr.Add(field, fmt.Sprintf("%q is not a duration; write it like 30s or 5m", v))
		}
		return d
	}
	req.ProcessIn = parse("process_in", b.ProcessIn)
	req.Timeout = parse("timeout", b.Timeout)
	if len(verr.Fields) > 0 {
		return req, &verr
	}
	return req, nil
}

type links struct {
	Self string `json:"self,omitempty"`
	Next string `json:"next,omitempty"`
	Prev string `json:"prev,omitempty"`
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

func (s *Server) createTask(w http.ResponseWriter, r *http.Request) error {
	var body createTaskRequest
	if err := decodeJSON(w, r, &body); err != nil {
		s.countEnqueue("", "", err)
		return err
	}
	ctx, cancel := requestContext(r)
	defer cancel()

	req, verr := body.toRequest()
	prepared, err := s.enq.Prepare(req)
	if verr != nil || err != nil {
		all := &tasks.ValidationError{}
		if verr != nil {
			all.Fields = append(all.Fields, verr.Fields...)
		}
		var perr *tasks.ValidationError
		if errors.As(err, &perr) {
			all.Fields = append(all.Fields, perr.Fields...)
		}
		s.countEnqueue(body.Type, cmp.Or(body.Queue, defaultQueue(s.enq.Catalogue(), body.Type)), all)
		return all
	}

	if key := r.Header.Get("Idempotency-Key"); key != "" {
		return s.createIdempotent(ctx, w, key, body, prepared)
	}
	info, err := s.enq.EnqueuePrepared(ctx, prepared)
	s.countEnqueue(prepared.Spec.Type, prepared.Queue, err)
	if err != nil {
		return err
	}
	return writeCreated(w, http.StatusAccepted, info.ID, info.Queue, info.Type, stateName(info.State))
}

func writeCreated(w http.ResponseWriter, status int, id, queue, typ, state string) error {
	self := taskPath(queue, id)
	w.Header().Set("Location", self)
	return writeJSON(w, status, createdTask{ID: id, Queue: queue, Type: typ, State: state, Links: links{Self: self}})
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

func stateName(s asynq.TaskState) string {
	if s == asynq.TaskStateAggregating {
		return "aggregating"
	}
	return s.String()
}

func toTaskJSON(ti *asynq.TaskInfo) taskJSON {
	t := taskJSON{
		ID: ti.ID, Queue: ti.Queue, Type: ti.Type, State: stateName(ti.State),
		LastError: ti.LastErr, Retried: ti.Retried, MaxRetry: ti.MaxRetry,
		NextProcessAt: timePtr(ti.NextProcessAt), LastFailedAt: timePtr(ti.LastFailedAt),
		CompletedAt: timePtr(ti.CompletedAt),
		Links:       links{Self: taskPath(ti.Queue, ti.ID)},
	}
	if ti.Timeout > 0 {
		t.Timeout = ti.Timeout.String()
	}
	if at, ok := tasks.EnqueuedAt(ti.Headers); ok {
		t.EnqueuedAt = timePtr(at)
	}
	if json.Valid(ti.Payload) {
		t.Payload = ti.Payload
	} else {
		b, _ := json.Marshal(string(ti.Payload))
		t.Payload = b
	}
	if ti.State == asynq.TaskStateCompleted || len(ti.Result) > 0 {
		res := string(ti.Result)
		t.Result = &res
	}
	if ti.State == asynq.TaskStatePending || ti.State == asynq.TaskStateActive {
		t.NextProcessAt = nil
	}
	return t
}

// pathTask reads {queue} and {id}, refusing queues we do not run.
func pathTask(r *http.Request) (queue, id string, err error) {
	queue, id = r.PathValue("queue"), r.PathValue("id")
	if !tasks.KnownQueue(queue) {
		return "", "", newProblem(http.StatusNotFound, fmt.Sprintf("unknown queue %q", queue))
	}
	return queue, id, nil
}

func (s *Server) getTask(w http.ResponseWriter, r *http.Request) error {
	queue, id, err := pathTask(r)
	if err != nil {
		return err
	}
	ti, err := s.taskInfo(queue, id)
	if err != nil {
		return fmt.Errorf("get task %s/%s: %w", queue, id, err)
	}
	return writeJSON(w, http.StatusOK, toTaskJSON(ti))
}

// deleteTask deletes a task that has not run and cancels one that is
// running (asynq cancels its context; the handler stops and it is retried
// or archived as a failure).
func (s *Server) deleteTask(w http.ResponseWriter, r *http.Request) error {
	queue, id, err := pathTask(r)
	if err != nil {
		return err
	}
	ti, err := s.taskInfo(queue, id)
	if err != nil {
		return fmt.Errorf("delete task %s/%s: %w", queue, id, err)
	}
	if ti.State == asynq.TaskStateActive {
		return s.cancelActive(w, r, queue, id)
	}
	if err := s.insp.DeleteTask(queue, id); err != nil {
		// A worker may have picked it up since we looked: cancel it instead.
		if again, gerr := s.taskInfo(queue, id); gerr == nil && again.State == asynq.TaskStateActive {
			return s.cancelActive(w, r, queue, id)
		}
		return fmt.Errorf("delete task %s/%s: %w", queue, id, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// cancelActive marks the task cancelled (so the worker does not retry it)
// and asks the worker running it to cancel its context.
func (s *Server) cancelActive(w http.ResponseWriter, r *http.Request, queue, id string) error {
	ctx, cancel := requestContext(r)
	defer cancel()
	if err := s.redis.Set(ctx, tasks.CancelKey(id), "1", max(s.retention, 24*time.Hour)).Err(); err != nil {
		return fmt.Errorf("mark task %s cancelled: %w", id, err)
	}
	if err := s.insp.CancelProcessing(id); err != nil {
		return fmt.Errorf("cancel task %s: %w", id, err)
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

func (s *Server) queueStats() ([]queueJSON, error) {
	if err := s.registerQueues(); err != nil {
		return nil, err
	}
	var out []queueJSON
	for _, q := range tasks.Queues() {
		qi, err := s.insp.GetQueueInfo(q)
		if err != nil {
			return nil, fmt.Errorf("queue %s: %w", q, err)
		}
		out = append(out, queueJSON{
			Queue: q, Size: qi.Size, Pending: qi.Pending, Active: qi.Active,
			Scheduled: qi.Scheduled, Retry: qi.Retry, Archived: qi.Archived,
			Completed: qi.Completed, ProcessedToday: qi.Processed, FailedToday: qi.Failed,
			LatencySeconds: qi.Latency.Seconds(), Paused: qi.Paused,
		})
	}
	return out, nil
}

func (s *Server) listQueues(w http.ResponseWriter, r *http.Request) error {
	qs, err := s.queueStats()
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"queues": qs})
}

// defaultQueue is the queue a request without one would go to, for metrics.
func defaultQueue(c *tasks.Catalogue, typ string) string {
	if spec, ok := c.Lookup(typ); ok {
		return spec.Queue
	}
	return ""
}

// Package audit records who changed what: one structured log line with
// audit=true per mutation (a task submitted, a batch, a delete or cancel,
// a schedule reload, a dashboard run/archive/delete/pause/unpause), and
// the counter taskstack_audit_events_total{action,outcome}.
//
// Payloads are never logged, only their size.
package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Actions, the action label. Every mutation is one of them.
const (
	Submit         = "submit"
	Batch          = "batch"
	Delete         = "delete"
	Cancel         = "cancel"
	Run            = "run"
	Archive        = "archive"
	Pause          = "pause"
	Unpause        = "unpause"
	DeleteQueue    = "delete_queue"
	ScheduleReload = "schedule_reload"
)

// Actions lists every action, for pre-created series.
var Actions = []string{Submit, Batch, Delete, Cancel, Run, Archive, Pause, Unpause, DeleteQueue, ScheduleReload}

// Outcomes, the outcome label.
const (
	OK       = "ok"       // done
	Rejected = "rejected" // refused for the request itself (4xx): invalid, unknown, too many
	Denied   = "denied"   // refused for the caller: no or a bad credential, a missing scope (401, 403)
	Error    = "error"    // failed on our side (5xx, Redis)
)

// Outcomes lists every outcome.
var Outcomes = []string{OK, Rejected, Denied, Error}

// System is the actor of what no person or token asked for (the schedule
// file's reload).
const System = "system"

// Event is one mutation. Zero fields are left out of the line.
type Event struct {
	// Actor is the token's, user's or proxy user's name; "anonymous" when
	// authentication is off, or when the caller could not be identified.
	Actor  string
	Action string
	// Via says how the actor was identified (token, session, proxy, open,
	// basic).
	Via    string
	Queue  string
	TaskID string
	// TaskIDs are the tasks a batch created (in its order).
	TaskIDs  []string
	TaskType string
	// Count is how many tasks a batch or bulk action covered.
	Count int
	// PayloadBytes is the size of the payload(s), never their content.
	PayloadBytes int
	Remote       string
	Outcome      string
	// Status is the HTTP status answered (0 when not over HTTP).
	Status int
	// Detail says more: the error, the batch's counts, the file.
	Detail string
}

// Recorder writes audit lines and counts them.
type Recorder struct {
	log    *slog.Logger
	events *prometheus.CounterVec

	// kinds are each (action, outcome)'s counter and message, resolved
	// once: copied on write, read without a lock on every mutation.
	mu    sync.Mutex
	kinds atomic.Pointer[map[[2]string]kind]
}

type kind struct {
	counter prometheus.Counter
	msg     string
}

// New returns a recorder logging to log and counting on reg. Recorders
// on one registry share the counter (devstack runs the app, the worker
// and the monitor in one process).
func New(log *slog.Logger, reg prometheus.Registerer) (*Recorder, error) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "taskstack_audit_events_total",
		Help: "Mutations (submit, batch, delete, cancel, run, archive, pause, unpause, delete_queue, schedule_reload) by action and outcome: ok, rejected, denied, error. Each is one log line with audit=true.",
	}, []string{"action", "outcome"})
	if err := reg.Register(vec); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, fmt.Errorf("audit metrics: %w", err)
		}
		vec = are.ExistingCollector.(*prometheus.CounterVec)
	}
	r := &Recorder{log: log, events: vec}
	r.kinds.Store(&map[[2]string]kind{})
	return r, nil
}

// Precreate makes the series of these actions start at zero.
func (r *Recorder) Precreate(actions ...string) {
	for _, a := range actions {
		for _, o := range Outcomes {
			r.kind(a, o)
		}
	}
}

func (r *Recorder) kind(action, outcome string) kind {
	key := [2]string{action, outcome}
	if k, ok := (*r.kinds.Load())[key]; ok {
		return k
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.kinds.Load()
	if k, ok := old[key]; ok {
		return k
	}
	k := kind{counter: r.events.WithLabelValues(action, outcome), msg: "audit " + action + " " + outcome}
	next := make(map[[2]string]kind, len(old)+1)
	for kk, v := range old {
		next[kk] = v
	}
	next[key] = k
	r.kinds.Store(&next)
	return k
}

// Record writes e as one line and counts it. A nil recorder records
// nothing.
func (r *Recorder) Record(ctx context.Context, e Event) {
	if r == nil {
		return
	}
	if e.Actor == "" {
		e.Actor = "anonymous"
	}
	k := r.kind(e.Action, e.Outcome)
	k.counter.Inc()
	var buf [14]slog.Attr // on the stack: every field, no allocation
	attrs := append(buf[:0],
		slog.Bool("audit", true),
		slog.String("actor", e.Actor),
		slog.String("action", e.Action),
		slog.String("outcome", e.Outcome),
	)
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	add("via", e.Via)
	add("queue", e.Queue)
	add("task_id", e.TaskID)
	if len(e.TaskIDs) > 0 {
		attrs = append(attrs, slog.Any("task_ids", e.TaskIDs))
	}
	add("task_type", e.TaskType)
	if e.Count > 0 {
		attrs = append(attrs, slog.Int("count", e.Count))
	}
	if e.PayloadBytes > 0 {
		attrs = append(attrs, slog.Int("payload_bytes", e.PayloadBytes))
	}
	add("remote", e.Remote)
	if e.Status > 0 {
		attrs = append(attrs, slog.Int("status", e.Status))
	}
	add("detail", e.Detail)
	r.log.LogAttrs(ctx, slog.LevelInfo, k.msg, attrs...)
}

// OutcomeOf maps an HTTP status to an outcome.
func OutcomeOf(status int) string {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return Denied
	case status >= 500:
		return Error
	case status >= 400:
		return Rejected
	}
	return OK
}

package web

import (
	"net/url"
	"regexp"
	"strings"
	"time"

	"taskstack/internal/store"
)

// taskDetail is one task as its own answer and page show it: what lists
// show, plus its history and where to look further.
type taskDetail struct {
	taskJSON
	// RetriesLeft is nil once the task is finished (completed, archived).
	RetriesLeft *int `json:"retries_left"`
	// TraceID is the trace the task belongs to (from its headers), and
	// TraceSampled whether that trace was recorded.
	TraceID      string `json:"trace_id,omitempty"`
	TraceSampled bool   `json:"trace_sampled"`
	// Attempts are the last store.MaxAttempts runs, oldest first.
	Attempts []attemptJSON `json:"attempts"`
	// Timeline is every event known, oldest first.
	Timeline []timelineEvent `json:"timeline"`
	// LogsCommand finds the task's log lines (when no logs link is set up).
	LogsCommand string `json:"logs_command,omitempty"`
}

type attemptJSON struct {
	Attempt         int       `json:"attempt"`
	StartedAt       time.Time `json:"started_at"`
	FinishedAt      time.Time `json:"finished_at"`
	DurationSeconds float64   `json:"duration_seconds"`
	Error           string    `json:"error,omitempty"`
	Worker          string    `json:"worker,omitempty"`
}

// Events of a timeline.
const (
	eventEnqueued         = "enqueued"
	eventScheduled        = "scheduled"         // waits for its process_in delay, until at
	eventAttemptStarted   = "attempt_started"   // a worker started it
	eventAttemptSucceeded = "attempt_succeeded" // ...and it returned without error
	eventAttemptFailed    = "attempt_failed"    // ...and it failed, with error
	eventRunning          = "running"           // an attempt runs now (no time: it is not recorded until it ends)
	eventRetryScheduled   = "retry_scheduled"   // the next attempt, at
	eventCompleted        = "completed"
	eventArchived         = "archived" // failed for good, with the last error
)

type timelineEvent struct {
	At      *time.Time `json:"at"`
	Event   string     `json:"event"`
	Attempt int        `json:"attempt,omitempty"`
	Error   string     `json:"error,omitempty"`
}

// taskLinks turns a task's IDs into the configured links and command.
type taskLinks struct {
	trace, logs, logsCommand string // templates
}

// safeID is what may go into a command line unquoted: every ID taskstack
// makes (UUIDs, canary:<queue>:<unix>, sched:<entry>:<unix>) matches.
var safeID = regexp.MustCompile(`^[A-Za-z0-9:_.-]+$`)

func (l taskLinks) apply(d *taskDetail) {
	fill := func(tmpl string, esc func(string) string) string {
		return strings.NewReplacer("{task_id}", esc(d.ID), "{queue}", esc(d.Queue), "{trace_id}", esc(d.TraceID)).Replace(tmpl)
	}
	if l.trace != "" && d.TraceID != "" && d.TraceSampled {
		d.Links.Trace = fill(l.trace, url.PathEscape)
	}
	switch {
	case l.logs != "":
		d.Links.Logs = fill(l.logs, url.QueryEscape)
	case l.logsCommand != "" && safeID.MatchString(d.ID):
		d.LogsCommand = fill(l.logsCommand, func(s string) string { return s })
	}
}

// traceParent reads the W3C traceparent header: version-traceid-spanid-flags.
var traceParent = regexp.MustCompile(`^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-([0-9a-f]{2})$`)

func toTaskDetail(t store.Task, l taskLinks) taskDetail {
	d := taskDetail{taskJSON: toTaskJSON(t), Attempts: []attemptJSON{}}
	if m := traceParent.FindStringSubmatch(t.Headers["traceparent"]); m != nil && m[1] != strings.Repeat("0", 32) {
		d.TraceID = m[1]
		d.TraceSampled = m[2][1]&1 == 1 // the low bit of the flags' last hex digit
	}
	if t.State != "completed" && t.State != "archived" {
		left := max(0, t.MaxRetry-t.Retried)
		d.RetriesLeft = &left
	}
	for _, a := range t.Attempts {
		d.Attempts = append(d.Attempts, attemptJSON{
			Attempt: a.N, StartedAt: a.StartedAt.UTC(), FinishedAt: a.FinishedAt.UTC(),
			DurationSeconds: a.FinishedAt.Sub(a.StartedAt).Seconds(), Error: a.Error, Worker: a.Worker,
		})
	}
	d.Timeline = timeline(t)
	l.apply(&d)
	return d
}

// timeline lists what is known of a task in the order it happened: its
// submission, each recorded attempt, and where it stands (running, waiting
// for a retry, done). asynq keeps completion and failure times to the
// second: an end in the same second as the last attempt's is placed after
// it.
func timeline(t store.Task) []timelineEvent {
	ev := []timelineEvent{}
	add := func(at time.Time, event string, attempt int, err string) {
		ev = append(ev, timelineEvent{At: timePtr(at), Event: event, Attempt: attempt, Error: err})
	}
	if !t.EnqueuedAt.IsZero() {
		add(t.EnqueuedAt, eventEnqueued, 0, "")
	}
	var last time.Time
	lastFailureRecorded := false
	for _, a := range t.Attempts {
		add(a.StartedAt, eventAttemptStarted, a.N, "")
		if a.Error != "" {
			add(a.FinishedAt, eventAttemptFailed, a.N, a.Error)
			lastFailureRecorded = a.N == t.Retried || a.N == t.Retried+1
		} else {
			add(a.FinishedAt, eventAttemptSucceeded, a.N, "")
		}
		last = a.FinishedAt
	}
	after := func(at time.Time) time.Time {
		if at.Before(last) && last.Sub(at) < time.Second {
			return last
		}
		return at
	}
	// asynq knows the last failure even when its record is missing (written
	// by a worker without attempt history, or lost).
	if !t.LastFailedAt.IsZero() && !lastFailureRecorded && t.State != "archived" {
		add(after(t.LastFailedAt), eventAttemptFailed, t.Retried, t.LastError)
	}
	switch t.State {
	case "scheduled":
		add(t.NextProcessAt, eventScheduled, 0, "")
	case "active":
		ev = append(ev, timelineEvent{Event: eventRunning, Attempt: t.Retried + 1})
	case "retry":
		add(after(t.NextProcessAt), eventRetryScheduled, t.Retried+1, "")
	case "completed":
		add(after(t.CompletedAt), eventCompleted, 0, "")
	case "archived":
		add(after(t.LastFailedAt), eventArchived, 0, t.LastError)
	}
	return ev
}

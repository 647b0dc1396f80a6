package store

import (
	"context"
	"encoding/json"
	"strconv"
	"time"
)

// MaxAttempts is how many attempts of one task are kept: the last ones.
const MaxAttempts = 20

// MaxAttemptError bounds an attempt's error as stored.
const MaxAttemptError = 1000

// Attempt is one run of a task, as its worker recorded it when it ended.
// asynq keeps only the last error; the store keeps each attempt.
type Attempt struct {
	Queue  string `json:"-"`
	TaskID string `json:"-"`
	// N counts from 1.
	N          int       `json:"n"`
	StartedAt  time.Time `json:"-"`
	FinishedAt time.Time `json:"-"`
	// Error is empty for a success.
	Error string `json:"err,omitempty"`
	// Worker is the host (pod) that ran it.
	Worker string `json:"w,omitempty"`
	// Times as stored: Unix milliseconds.
	Start int64 `json:"s"`
	End   int64 `json:"e"`
}

// attemptsKey holds a task's attempts (a list of JSON records, oldest
// first). It carries the queue's hash tag: the task read script reads it
// beside the task on the task's Redis Cluster node.
func attemptsKey(queue, id string) string { return "taskstack:{" + queue + "}:attempts:" + id }

// RecordAttempts appends attempts to their tasks' histories in one round
// trip, keeping the last MaxAttempts of each for as long as completed
// tasks are kept (at least a day).
func (s *Store) RecordAttempts(ctx context.Context, as []Attempt) error {
	if len(as) == 0 {
		return nil
	}
	ttl := max(s.retention, 24*time.Hour)
	pipe := s.rc.Pipeline()
	for _, a := range as {
		if len(a.Error) > MaxAttemptError {
			a.Error = a.Error[:MaxAttemptError] + "…"
		}
		a.Start, a.End = a.StartedAt.UnixMilli(), a.FinishedAt.UnixMilli()
		b := a.appendJSON(make([]byte, 0, 96+len(a.Error)))
		k := attemptsKey(a.Queue, a.TaskID)
		pipe.RPush(ctx, k, b)
		// The history of a task's first attempts is short: one record an
		// attempt, and a rare second one with the same number (a run
		// repeated after its completion write was lost). Trimming from
		// the tenth on keeps it within MaxAttempts with a command less per
		// task in the usual case, a task that succeeds at once.
		if a.N >= MaxAttempts/2 {
			pipe.LTrim(ctx, k, -MaxAttempts, -1)
		}
		pipe.PExpire(ctx, k, ttl)
	}
	_, err := pipe.Exec(ctx)
	return s.wrap("record attempts", err)
}

// appendJSON appends what json.Marshal(a) writes, without reflection: one
// record per task goes through it (it was a tenth of the worker's CPU in
// docs/benchmarks.md's profile).
func (a Attempt) appendJSON(b []byte) []byte {
	b = append(b, `{"n":`...)
	b = strconv.AppendInt(b, int64(a.N), 10)
	if a.Error != "" {
		b = appendJSONString(append(b, `,"err":`...), a.Error)
	}
	if a.Worker != "" {
		b = appendJSONString(append(b, `,"w":`...), a.Worker)
	}
	b = strconv.AppendInt(append(b, `,"s":`...), a.Start, 10)
	b = strconv.AppendInt(append(b, `,"e":`...), a.End, 10)
	return append(b, '}')
}

// appendJSONString quotes s as encoding/json does: printable ASCII other
// than the characters it escapes is copied, anything else goes through
// json.Marshal.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// parseAttempts decodes the stored records, skipping any it cannot read.
func parseAttempts(queue, id string, raw any) []Attempt {
	list, _ := raw.([]any)
	out := make([]Attempt, 0, len(list))
	for _, r := range list {
		str, _ := r.(string)
		var a Attempt
		if json.Unmarshal([]byte(str), &a) != nil {
			continue
		}
		a.Queue, a.TaskID = queue, id
		a.StartedAt, a.FinishedAt = time.UnixMilli(a.Start), time.UnixMilli(a.End)
		out = append(out, a)
	}
	return out
}

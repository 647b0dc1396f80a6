package tasks

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on enqueue options.
const (
	MaxProcessIn = 7 * 24 * time.Hour
	MaxTimeout   = time.Hour
	MaxMaxRetry  = 25
)

// Request is what a caller asks to enqueue, as the API's JSON body has it.
// Only Type is required; empty fields take the type's defaults. Durations
// are Go duration strings ("30s", "5m").
type Request struct {
	Type      string          `json:"type"`
	Payload   json.RawMessage `json:"payload,omitempty"`
	Queue     string          `json:"queue,omitempty"`
	ProcessIn string          `json:"process_in,omitempty"`
	MaxRetry  *int            `json:"max_retry,omitempty"`
	Timeout   string          `json:"timeout,omitempty"`
	// ID, when set, becomes the task's ID, and a second task with the same
	// ID is refused by Redis (per-tick IDs of periodic tasks, idempotency).
	ID string `json:"-"`
	// Retention, when positive, replaces the store's retention of the
	// completed task (the canary keeps its own ticks briefly).
	Retention time.Duration `json:"-"`
	// Internal allows an internal type (Defaults.Internal); the API never
	// sets it.
	Internal bool `json:"-"`
}

// Prepared is a validated request with every default resolved: what gets
// enqueued.
type Prepared struct {
	Type      string
	Payload   []byte
	Queue     string
	Timeout   time.Duration
	MaxRetry  int
	ProcessIn time.Duration
	ID        string
	Retention time.Duration
}

// Prepare validates r and resolves its defaults. On error it returns a
// *ValidationError naming every bad field, and a Prepared whose Type and
// Queue are filled as far as they are known (for metrics labels).
func (c *Catalogue) Prepare(r Request) (Prepared, error) {
	var verr ValidationError
	p := Prepared{Queue: r.Queue, ID: r.ID, Retention: r.Retention}
	spec, ok := c.Lookup(r.Type)
	switch {
	case r.Type == "":
		verr.Add("type", "is required (known types: "+strings.Join(c.submittable, ", ")+")")
	case !ok:
		verr.Add("type", fmt.Sprintf("unknown task type %q (known types: %s)", r.Type, strings.Join(c.submittable, ", ")))
	case spec.Defaults.Internal && !r.Internal:
		verr.Add("type", fmt.Sprintf("%s is taskstack's own and cannot be submitted (known types: %s)", r.Type, strings.Join(c.submittable, ", ")))
	default:
		p.Type = spec.Type
		p.MaxRetry = spec.Defaults.MaxRetry
		p.Timeout = spec.Defaults.Timeout
		if p.Queue == "" {
			p.Queue = spec.Defaults.Queue
		}
		switch {
		case len(r.Payload) > c.limits.MaxPayloadBytes:
			verr.Add("payload", fmt.Sprintf("must be at most %d bytes, got %d", c.limits.MaxPayloadBytes, len(r.Payload)))
		case !utf8.Valid(r.Payload):
			verr.Add("payload", "must be valid UTF-8 text")
		default:
			payload, err := spec.canonical(r.Payload)
			var perr *ValidationError
			if errors.As(err, &perr) {
				verr.Fields = append(verr.Fields, perr.Fields...)
			}
			p.Payload = payload
		}
	}
	if p.Queue != "" && !KnownQueue(p.Queue) {
		verr.Add("queue", fmt.Sprintf("unknown queue %q (use %s)", p.Queue, strings.Join(Queues(), ", ")))
	}
	p.ProcessIn = parseDuration(&verr, "process_in", r.ProcessIn, 0, MaxProcessIn)
	if d := parseDuration(&verr, "timeout", r.Timeout, time.Second, MaxTimeout); d > 0 {
		p.Timeout = d
	}
	if r.MaxRetry != nil {
		if *r.MaxRetry < 0 || *r.MaxRetry > MaxMaxRetry {
			verr.Add("max_retry", fmt.Sprintf("must be between 0 and %d", MaxMaxRetry))
		} else {
			p.MaxRetry = *r.MaxRetry
		}
	}
	if err := verr.Err(); err != nil {
		p.Payload = nil
		return p, err
	}
	return p, nil
}

// parseDuration reads an optional duration field within [lo, hi].
func parseDuration(verr *ValidationError, field, raw string, lo, hi time.Duration) time.Duration {
	if raw == "" {
		return 0
	}
	d, err := time.ParseDuration(raw)
	switch {
	case err != nil:
		verr.Add(field, fmt.Sprintf("%q is not a duration; write it like 30s or 5m", raw))
	case d == 0:
		return 0
	case d < lo || d > hi:
		verr.Add(field, "must be between "+HumanDuration(lo)+" and "+HumanDuration(hi))
	default:
		return d
	}
	return 0
}

// HumanDuration writes d the way people type it: "10m", not "10m0s".
func HumanDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/hibiken/asynq"
)

// NewCatalogue returns the catalogue of every task type taskstack knows.
// Adding a task type is one file (see echo.go) and one line here.
func NewCatalogue() *Catalogue {
	return NewCatalogueOf(
		Echo,
		Fail,
	)
}

// Defaults are a task type's options when a request leaves them out.
type Defaults struct {
	Queue    string
	Timeout  time.Duration
	MaxRetry int
}

// Job is one run of a task as its handler sees it.
type Job struct {
	// ID is the task's ID, the same on every retry: use it as the
	// idempotency key of whatever the handler changes elsewhere.
	ID       string
	Retried  int
	MaxRetry int
	// Result is written as the task's result, kept with the task for its
	// retention.
	Result io.Writer
}

// Spec is one task type in the catalogue. Build it with Define.
type Spec struct {
	Type     string
	Defaults Defaults
	// canonical decodes and validates a raw payload and returns it in
	// canonical form (defaults filled in); errors are *ValidationError
	// naming payload fields.
	canonical func(raw []byte) ([]byte, error)
	handler   asynq.HandlerFunc
}

// Define turns a payload type and a handler into a catalogue entry. The
// payload is decoded strictly (unknown fields refused), then its Validate
// method runs, which may fill defaults and must return a *ValidationError
// naming fields as they are in the JSON ("sleep"; the catalogue adds the
// "payload." prefix). The handler gets the validated payload; a payload
// that no longer validates when a worker runs it fails without retries.
func Define[T any, P interface {
	*T
	Validate() error
}](name string, d Defaults, handle func(ctx context.Context, p T, job Job) error) Spec {
	parse := func(raw []byte) (T, error) {
		var p T
		if len(bytes.TrimSpace(raw)) > 0 && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			if err := decodeStrictBytes(raw, &p); err != nil {
				return p, payloadError(err)
			}
		}
		if err := P(&p).Validate(); err != nil {
			return p, payloadError(err)
		}
		return p, nil
	}
	return Spec{
		Type:     name,
		Defaults: d,
		canonical: func(raw []byte) ([]byte, error) {
			p, err := parse(raw)
			if err != nil {
				return nil, err
			}
			return json.Marshal(p)
		},
		handler: func(ctx context.Context, t *asynq.Task) error {
			p, err := parse(t.Payload())
			if err != nil {
				// A payload that does not validate never will: no retry.
				return fmt.Errorf("%s: %w: %w", name, err, asynq.SkipRetry)
			}
			job := Job{Result: io.Discard}
			job.ID, _ = asynq.GetTaskID(ctx)
			job.Retried, _ = asynq.GetRetryCount(ctx)
			job.MaxRetry, _ = asynq.GetMaxRetry(ctx)
			if rw := t.ResultWriter(); rw != nil {
				job.Result = &patientWriter{ctx: ctx, w: rw, window: ResultWriteWindow}
			}
			return handle(ctx, p, job)
		},
	}
}

// ResultWriteWindow is how long a handler keeps trying to write its result
// while Redis does not take it (a restart, a failover): the work is done,
// and failing it now would run it again.
const ResultWriteWindow = 10 * time.Second

// patientWriter retries a failed write with a growing pause until it
// succeeds, the window has passed, or ctx ends. A result write is an HSET:
// writing it twice is harmless.
type patientWriter struct {
	ctx    context.Context
	w      io.Writer
	window time.Duration
}

func (p *patientWriter) Write(b []byte) (int, error) {
	deadline := time.Now().Add(p.window)
	pause := 50 * time.Millisecond
	for {
		n, err := p.w.Write(b)
		if err == nil || p.ctx.Err() != nil || time.Now().Add(pause).After(deadline) {
			return n, err
		}
		t := time.NewTimer(pause)
		select {
		case <-p.ctx.Done():
			t.Stop()
			return n, err
		case <-t.C:
		}
		pause = min(2*pause, time.Second)
	}
}

// payloadError names every field of a payload's error "payload.<field>".
func payloadError(err error) error {
	var verr *ValidationError
	var derr *DecodeError
	out := &ValidationError{}
	switch {
	case errors.As(err, &verr):
		for _, f := range verr.Fields {
			out.Add(prefixed("payload", f.Field), f.Message)
		}
	case errors.As(err, &derr):
		out.Add(prefixed("payload", derr.Field), derr.Message)
	default:
		out.Add("payload", err.Error())
	}
	return out
}

func prefixed(prefix, field string) string {
	if field == "" {
		return prefix
	}
	return prefix + "." + field
}

// Handler runs a task of this type (with its payload validated first).
func (s Spec) Handler() asynq.HandlerFunc { return s.handler }

// Catalogue holds every task type. Build it with NewCatalogue.
type Catalogue struct {
	specs map[string]Spec
	types []string
}

// NewCatalogueOf returns a catalogue of exactly these types (tests use it
// to add throwaway types).
func NewCatalogueOf(specs ...Spec) *Catalogue {
	c := &Catalogue{specs: map[string]Spec{}}
	for _, s := range specs {
		if _, dup := c.specs[s.Type]; dup {
			panic("tasks: task type " + s.Type + " defined twice")
		}
		if !KnownQueue(s.Defaults.Queue) {
			panic("tasks: task type " + s.Type + " has unknown default queue " + s.Defaults.Queue)
		}
		c.specs[s.Type] = s
		c.types = append(c.types, s.Type)
	}
	slices.Sort(c.types)
	return c
}

// Lookup returns the spec of a task type.
func (c *Catalogue) Lookup(typ string) (Spec, bool) {
	s, ok := c.specs[typ]
	return s, ok
}

// Types lists the known task types, sorted.
func (c *Catalogue) Types() []string { return slices.Clone(c.types) }

// Register installs every handler on mux.
func (c *Catalogue) Register(mux *asynq.ServeMux) {
	for _, t := range c.types {
		mux.HandleFunc(t, c.specs[t].handler)
	}
}

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

// Deps are what some task types need from the deployment, built by the
// binaries from their configuration and injected here (never read from the
// environment by a task type itself).
type Deps struct {
	// Webhook delivers demo:webhook's requests; nil refuses every URL.
	Webhook WebhookSender
	// Canary records canary:ping's completions; nil records nothing.
	Canary CanaryRecorder
}

// NewCatalogue returns the catalogue of every task type taskstack knows,
// with no Deps (demo:webhook refuses every URL).
func NewCatalogue() *Catalogue { return NewCatalogueWith(Deps{}) }

// NewCatalogueWith returns the catalogue of every task type taskstack
// knows, built with d. Adding a task type is one file (see echo.go) and one
// line here.
func NewCatalogueWith(d Deps) *Catalogue {
	return NewCatalogueOf(
		Echo,
		Fail,
		Flaky,
		Webhook(d.Webhook),
		Canary(d.Canary),
	)
}

// Defaults are a task type's options when a request leaves them out.
type Defaults struct {
	Queue    string
	Timeout  time.Duration
	MaxRetry int
	// Internal types are submitted by taskstack itself (the canary), never
	// through the API: Prepare refuses them unless Request.Internal is set.
	Internal bool
}

// Job is one run of a task as its handler sees it.
type Job struct {
	// ID is the task's ID, the same on every retry: use it as the
	// idempotency key of whatever the handler changes elsewhere.
	ID       string
	Queue    string
	Retried  int
	MaxRetry int
	// EnqueuedAt is when the task was submitted (zero when unknown).
	EnqueuedAt time.Time
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
	run       func(ctx context.Context, t *asynq.Task, l Limits) error
}

// Limits bound what a task may carry. Zero fields mean the defaults.
type Limits struct {
	// MaxPayloadBytes is the largest payload Prepare accepts.
	MaxPayloadBytes int
	// MaxResultBytes is the largest result a handler may write; a larger
	// one fails the task without retries.
	MaxResultBytes int
}

// Default limits.
const (
	DefaultMaxPayloadBytes = 64 << 10
	DefaultMaxResultBytes  = 1 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxPayloadBytes <= 0 {
		l.MaxPayloadBytes = DefaultMaxPayloadBytes
	}
	if l.MaxResultBytes <= 0 {
		l.MaxResultBytes = DefaultMaxResultBytes
	}
	return l
}

// Define turns a payload type and a handler into a catalogue entry. The
// payload is decoded strictly (unknown fields refused), then its Validate
// method runs, which may fill defaults and must return a *ValidationError
// naming fields as they are in the JSON ("sleep"; the catalogue adds the
// "payload." prefix). The handler gets the validated payload; a payload
// that no longer validates when a worker runs it fails without retries.
//
// Options add what a type needs beyond its payload (see Check).
func Define[T any, P interface {
	*T
	Validate() error
}](name string, d Defaults, handle func(ctx context.Context, p T, job Job) error, opts ...Option[T]) Spec {
	var o options[T]
	for _, opt := range opts {
		opt(&o)
	}
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
		for _, check := range o.checks {
			if err := check(&p); err != nil {
				return p, payloadError(err)
			}
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
		run: func(ctx context.Context, t *asynq.Task, l Limits) error {
			p, err := parse(t.Payload())
			if err != nil {
				// A payload that does not validate never will: no retry.
				return fmt.Errorf("%s: %w: %w", name, err, asynq.SkipRetry)
			}
			job := Job{}
			job.ID, _ = asynq.GetTaskID(ctx)
			job.Queue, _ = asynq.GetQueueName(ctx)
			job.EnqueuedAt, _ = EnqueuedAt(t.Headers())
			job.Retried, _ = asynq.GetRetryCount(ctx)
			job.MaxRetry, _ = asynq.GetMaxRetry(ctx)
			var w io.Writer = io.Discard
			if rw := t.ResultWriter(); rw != nil {
				w = &patientWriter{ctx: ctx, w: rw, window: ResultWriteWindow}
			}
			job.Result = &cappedWriter{w: w, left: l.withDefaults().MaxResultBytes}
			return handle(ctx, p, job)
		},
	}
}

// Option adjusts a task type built by Define.
type Option[T any] func(*options[T])

type options[T any] struct {
	checks []func(*T) error
}

// Check adds a validation that needs more than the payload, such as
// configuration a constructor was given (demo:webhook's allowlist). It runs
// after Validate, when a task is enqueued and again when a worker runs it,
// and returns a *ValidationError naming fields as Validate does.
func Check[T any](check func(p *T) error) Option[T] {
	return func(o *options[T]) { o.checks = append(o.checks, check) }
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

// Handler runs a task of this type (with its payload validated first)
// under the default limits.
func (s Spec) Handler() asynq.HandlerFunc {
	return func(ctx context.Context, t *asynq.Task) error { return s.run(ctx, t, Limits{}) }
}

// ErrResultTooLarge is a result over Limits.MaxResultBytes; it ends the
// task without retries (a rerun would write the same).
var ErrResultTooLarge = fmt.Errorf("the result is larger than the limit: %w", asynq.SkipRetry)

// cappedWriter refuses a result over the limit instead of storing it.
type cappedWriter struct {
	w    io.Writer
	left int
}

func (c *cappedWriter) Write(b []byte) (int, error) {
	if len(b) > c.left {
		return 0, ErrResultTooLarge
	}
	c.left -= len(b)
	return c.w.Write(b)
}

// Catalogue holds every task type. Build it with NewCatalogue.
type Catalogue struct {
	specs map[string]Spec
	types []string
	// submittable is types without the internal ones.
	submittable []string
	limits      Limits
}

// WithLimits returns a copy of c that enforces l.
func (c *Catalogue) WithLimits(l Limits) *Catalogue {
	out := *c
	out.limits = l.withDefaults()
	return &out
}

// NewCatalogueOf returns a catalogue of exactly these types (tests use it
// to add throwaway types).
func NewCatalogueOf(specs ...Spec) *Catalogue {
	c := &Catalogue{specs: map[string]Spec{}, limits: Limits{}.withDefaults()}
	for _, s := range specs {
		if _, dup := c.specs[s.Type]; dup {
			panic("tasks: task type " + s.Type + " defined twice")
		}
		if !KnownQueue(s.Defaults.Queue) {
			panic("tasks: task type " + s.Type + " has unknown default queue " + s.Defaults.Queue)
		}
		c.specs[s.Type] = s
		c.types = append(c.types, s.Type)
		if !s.Defaults.Internal {
			c.submittable = append(c.submittable, s.Type)
		}
	}
	slices.Sort(c.types)
	slices.Sort(c.submittable)
	return c
}

// Lookup returns the spec of a task type.
func (c *Catalogue) Lookup(typ string) (Spec, bool) {
	s, ok := c.specs[typ]
	return s, ok
}

// Types lists the known task types, sorted, internal ones included (the
// page filters by them).
func (c *Catalogue) Types() []string { return slices.Clone(c.types) }

// Submittable lists the task types the API accepts, sorted.
func (c *Catalogue) Submittable() []string { return slices.Clone(c.submittable) }

// SkipRetry, wrapped into a handler's error (fmt.Errorf("...: %w", err,
// tasks.SkipRetry)), fails the task for good: no retry. It is asynq's.
var SkipRetry = asynq.SkipRetry

// MaxRetryAfter bounds the delay a task may ask for before its retry.
const MaxRetryAfter = time.Hour

// RetryDelay is the worker's delay before retrying a failed task: what the
// error asks for when it has a RetryAfter() (see RetryAfter), else asynq's
// exponential back-off.
func (c *Catalogue) RetryDelay(n int, err error, t *asynq.Task) time.Duration {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		if d := ra.RetryAfter(); d > 0 {
			return min(d, MaxRetryAfter)
		}
	}
	return asynq.DefaultRetryDelayFunc(n, err, t)
}

// RetryAfter wraps err so that the task is retried after d (at most
// MaxRetryAfter) instead of after asynq's back-off.
func RetryAfter(d time.Duration, err error) error { return &retryAfterError{d: d, err: err} }

type retryAfterError struct {
	d   time.Duration
	err error
}

func (e *retryAfterError) Error() string             { return e.err.Error() }
func (e *retryAfterError) Unwrap() error             { return e.err }
func (e *retryAfterError) RetryAfter() time.Duration { return e.d }

// Register installs every handler on mux.
func (c *Catalogue) Register(mux *asynq.ServeMux) {
	for _, t := range c.types {
		spec, limits := c.specs[t], c.limits
		mux.HandleFunc(t, func(ctx context.Context, task *asynq.Task) error { return spec.run(ctx, task, limits) })
	}
}

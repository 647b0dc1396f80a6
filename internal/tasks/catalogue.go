package tasks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"
)

// Spec is one task type: its name, defaults and how to validate its payload.
type Spec struct {
	Type     string
	Queue    string
	Timeout  time.Duration
	MaxRetry int
	// Validate checks a raw JSON payload and returns it in canonical form
	// (defaults filled in). Errors are *ValidationError naming payload fields.
	Validate func(raw json.RawMessage) ([]byte, error)
	Handler  asynq.HandlerFunc
}

// Catalogue holds every task type. Build it with NewCatalogue.
type Catalogue struct {
	specs map[string]Spec
}

// NewCatalogue returns the catalogue of every task type taskstack knows.
func NewCatalogue() *Catalogue {
	c := &Catalogue{specs: map[string]Spec{}}
	c.add(echoSpec())
	c.add(failSpec())
	return c
}

func (c *Catalogue) add(s Spec) { c.specs[s.Type] = s }

// Lookup returns the spec of a task type.
func (c *Catalogue) Lookup(typ string) (Spec, bool) {
	s, ok := c.specs[typ]
	return s, ok
}

// Types lists the known task types, sorted.
func (c *Catalogue) Types() []string {
	out := make([]string, 0, len(c.specs))
	for t := range c.specs {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// Register installs every handler on mux.
func (c *Catalogue) Register(mux *asynq.ServeMux) {
	for _, t := range c.Types() {
		mux.HandleFunc(t, c.specs[t].Handler)
	}
}

// Limits on enqueue options.
const (
	MaxProcessIn = 7 * 24 * time.Hour
	MaxTimeout   = time.Hour
	MaxMaxRetry  = 25
)

// Request is what a caller asks to enqueue. Only Type is required; zero
// values take the type's defaults.
type Request struct {
	Type      string
	Payload   json.RawMessage
	Queue     string
	ProcessIn time.Duration
	Timeout   time.Duration
	// MaxRetry is nil for the type's default.
	MaxRetry *int
	// TaskID, when set, is used as the asynq task ID.
	TaskID string
}

// Prepared is a validated request, ready to enqueue.
type Prepared struct {
	Spec     Spec
	Payload  []byte
	Queue    string
	Timeout  time.Duration
	MaxRetry int
	Options  []asynq.Option
}

// Prepare validates r against the catalogue and resolves defaults. The
// returned error is a *ValidationError naming every bad field.
func (c *Catalogue) Prepare(r Request, retention time.Duration) (Prepared, error) {
	var verr ValidationError
	spec, ok := c.Lookup(r.Type)
	switch {
	case r.Type == "":
		verr.Add("type", "is required (known types: "+strings.Join(c.Types(), ", ")+")")
	case !ok:
		verr.Add("type", fmt.Sprintf("unknown task type %q (known types: %s)", r.Type, strings.Join(c.Types(), ", ")))
	}
	p := Prepared{Spec: spec, Queue: r.Queue, Timeout: r.Timeout}
	if ok {
		payload, err := spec.Validate(r.Payload)
		var pv *ValidationError
		switch {
		case errors.As(err, &pv):
			verr.Fields = append(verr.Fields, pv.Fields...)
		case err != nil:
			verr.Add("payload", err.Error())
		}
		p.Payload = payload
		p.MaxRetry = spec.MaxRetry
		if p.Queue == "" {
			p.Queue = spec.Queue
		}
		if p.Timeout == 0 {
			p.Timeout = spec.Timeout
		}
	}
	if p.Queue != "" && !KnownQueue(p.Queue) {
		verr.Add("queue", fmt.Sprintf("unknown queue %q (use %s)", p.Queue, strings.Join(Queues(), ", ")))
	}
	if r.ProcessIn < 0 || r.ProcessIn > MaxProcessIn {
		verr.Add("process_in", "must be between 0s and "+HumanDuration(MaxProcessIn))
	}
	if r.Timeout < 0 || r.Timeout > MaxTimeout {
		verr.Add("timeout", "must be between 1s and "+HumanDuration(MaxTimeout))
	} else if r.Timeout != 0 && r.Timeout < time.Second {
		verr.Add("timeout", "must be at least 1s")
	}
	if r.MaxRetry != nil {
		if *r.MaxRetry < 0 || *r.MaxRetry > MaxMaxRetry {
			verr.Add("max_retry", fmt.Sprintf("must be between 0 and %d", MaxMaxRetry))
		} else {
			p.MaxRetry = *r.MaxRetry
		}
	}
	if len(verr.Fields) > 0 {
		return Prepared{}, &verr
	}
	p.Options = []asynq.Option{
		asynq.Queue(p.Queue),
		asynq.Timeout(p.Timeout),
		asynq.MaxRetry(p.MaxRetry),
		asynq.Retention(retention),
	}
	if r.ProcessIn > 0 {
		p.Options = append(p.Options, asynq.ProcessIn(r.ProcessIn))
	}
	if r.TaskID != "" {
		p.Options = append(p.Options, asynq.TaskID(r.TaskID))
	}
	return p, nil
}

// FieldError is one invalid field, named as the caller wrote it
// ("payload.sleep").
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every invalid field of a request.
type ValidationError struct {
	Fields []FieldError
}

// Add records one invalid field.
func (e *ValidationError) Add(field, msg string) {
	e.Fields = append(e.Fields, FieldError{Field: field, Message: msg})
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid task: " + strings.Join(parts, "; ")
}

// decodeStrict decodes a JSON object refusing unknown fields; a JSON null
// or empty payload decodes to the zero value.
func decodeStrict(raw json.RawMessage, v any, prefix string) error {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var verr ValidationError
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field != "":
			verr.Add(prefix+"."+typeErr.Field, "must be a "+jsonType(typeErr.Type.Kind().String()))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			verr.Add(prefix+"."+name, "is not a known field")
		default:
			verr.Add(prefix, "must be a JSON object")
		}
		return &verr
	}
	if dec.More() {
		return &ValidationError{Fields: []FieldError{{Field: prefix, Message: "must be a single JSON object"}}}
	}
	return nil
}

func jsonType(kind string) string {
	switch {
	case kind == "string":
		return "string"
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"), strings.HasPrefix(kind, "float"):
		return "number"
	case kind == "bool":
		return "boolean"
	}
	return "JSON " + kind
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

package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/hibiken/asynq"
)

// TypeEcho is the tutorial's task: wait, then return "prefix___" + arg.
const TypeEcho = "demo:echo"

// Echo payload bounds.
const (
	EchoDefaultSleep = 60 * time.Second
	EchoMaxSleep     = 10 * time.Minute
	EchoMaxArg       = 1024
)

// EchoPayload is demo:echo's payload. Sleep is a Go duration string.
type EchoPayload struct {
	Arg   string `json:"arg"`
	Sleep string `json:"sleep,omitempty"`
}

// NewEchoTask builds a demo:echo request (used by tests and tools).
func NewEchoTask(arg string, sleep time.Duration) Request {
	b, _ := json.Marshal(EchoPayload{Arg: arg, Sleep: sleep.String()})
	return Request{Type: TypeEcho, Payload: b}
}

func echoSpec() Spec {
	return Spec{
		Type:     TypeEcho,
		Queue:    QueueDefault,
		Timeout:  EchoMaxSleep + time.Minute,
		MaxRetry: 3,
		Validate: validateEcho,
		Handler:  handleEcho,
	}
}

// ParseEcho validates a demo:echo payload and returns it with its sleep.
func ParseEcho(raw json.RawMessage) (EchoPayload, time.Duration, error) {
	var p EchoPayload
	if err := decodeStrict(raw, &p, "payload"); err != nil {
		return p, 0, err
	}
	var verr ValidationError
	if !utf8.ValidString(p.Arg) {
		verr.Add("payload.arg", "must be valid UTF-8 text")
	} else if n := utf8.RuneCountInString(p.Arg); n > EchoMaxArg {
		verr.Add("payload.arg", fmt.Sprintf("must be at most %d characters, got %d", EchoMaxArg, n))
	}
	sleep := EchoDefaultSleep
	if p.Sleep != "" {
		d, err := time.ParseDuration(p.Sleep)
		switch {
		case err != nil:
			verr.Add("payload.sleep", fmt.Sprintf("%q is not a duration; write it like 0s, 1.5s, 2m", p.Sleep))
		case d < 0 || d > EchoMaxSleep:
			verr.Add("payload.sleep", "must be between 0s and "+HumanDuration(EchoMaxSleep))
		default:
			sleep = d
		}
	}
	if len(verr.Fields) > 0 {
		return p, 0, &verr
	}
	p.Sleep = sleep.String()
	return p, sleep, nil
}

func validateEcho(raw json.RawMessage) ([]byte, error) {
	p, _, err := ParseEcho(raw)
	if err != nil {
		return nil, err
	}
	return json.Marshal(p)
}

// EchoResult is what demo:echo writes as its result.
func EchoResult(arg string) string { return "prefix___" + arg }

func handleEcho(ctx context.Context, t *asynq.Task) error {
	p, sleep, err := ParseEcho(t.Payload())
	if err != nil {
		// A payload that never validates will never succeed: don't retry it.
		return fmt.Errorf("%s: %w: %w", TypeEcho, err, asynq.SkipRetry)
	}
	timer := time.NewTimer(sleep)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%s: stopped after being cancelled: %w", TypeEcho, context.Cause(ctx))
	case <-timer.C:
	}
	if _, err := t.ResultWriter().Write([]byte(EchoResult(p.Arg))); err != nil {
		return fmt.Errorf("%s: write result: %w", TypeEcho, err)
	}
	return nil
}

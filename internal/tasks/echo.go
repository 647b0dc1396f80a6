package tasks

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"
)

// TypeEcho is the tutorial's task: wait, then return "prefix___" + arg.
const TypeEcho = "demo:echo"

// Echo payload bounds.
const (
	EchoDefaultSleep = 60 * time.Second
	EchoMaxSleep     = 10 * time.Minute
	EchoMaxArg       = 1024
)

// Echo is the catalogue entry of demo:echo.
var Echo = Define(TypeEcho, Defaults{Queue: QueueDefault, Timeout: EchoMaxSleep + time.Minute, MaxRetry: 3}, handleEcho)

// EchoPayload is demo:echo's payload. Sleep is a Go duration string; the
// tutorial's 60s when empty.
type EchoPayload struct {
	Arg   string `json:"arg"`
	Sleep string `json:"sleep,omitempty"`

	sleep time.Duration
}

// Validate checks the bounds and fills in the default sleep.
func (p *EchoPayload) Validate() error {
	var v ValidationError
	if n := utf8.RuneCountInString(p.Arg); n > EchoMaxArg {
		v.Add("arg", fmt.Sprintf("must be at most %d characters, got %d", EchoMaxArg, n))
	}
	p.sleep = EchoDefaultSleep
	if p.Sleep != "" {
		d, err := time.ParseDuration(p.Sleep)
		switch {
		case err != nil:
			v.Add("sleep", fmt.Sprintf("%q is not a duration; write it like 0s, 1.5s, 2m", p.Sleep))
		case d < 0 || d > EchoMaxSleep:
			v.Add("sleep", "must be between 0s and "+HumanDuration(EchoMaxSleep))
		default:
			p.sleep = d
		}
	}
	p.Sleep = p.sleep.String()
	return v.Err()
}

// EchoResult is what demo:echo writes as its result.
func EchoResult(arg string) string { return "prefix___" + arg }

func handleEcho(ctx context.Context, p EchoPayload, job Job) error {
	timer := time.NewTimer(p.sleep)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%s: stopped after being cancelled: %w", TypeEcho, context.Cause(ctx))
	case <-timer.C:
	}
	if _, err := job.Result.Write([]byte(EchoResult(p.Arg))); err != nil {
		return fmt.Errorf("%s: write result: %w", TypeEcho, err)
	}
	return nil
}

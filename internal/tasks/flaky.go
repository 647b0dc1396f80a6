package tasks

import (
	"context"
	"fmt"
	"time"
)

// TypeFlaky fails its first attempts, then succeeds: the demo of retries
// with back-off, and of a task page's timeline of attempts.
const TypeFlaky = "demo:flaky"

// Flaky is the catalogue entry of demo:flaky.
var Flaky = Define(TypeFlaky, Defaults{Queue: QueueDefault, Timeout: time.Minute, MaxRetry: 5}, handleFlaky)

// FlakyPayload says how many attempts fail before one succeeds.
type FlakyPayload struct {
	Failures int `json:"failures"`
}

// Validate bounds the failures (1 when none is given). A demo:flaky task
// succeeds only if its max_retry is at least its failures.
func (p *FlakyPayload) Validate() error {
	if p.Failures == 0 {
		p.Failures = 1
	}
	if p.Failures < 0 || p.Failures > MaxMaxRetry {
		return &ValidationError{Fields: []FieldError{{Field: "failures", Message: fmt.Sprintf("must be between 1 and %d", MaxMaxRetry)}}}
	}
	return nil
}

func handleFlaky(_ context.Context, p FlakyPayload, job Job) error {
	if job.Retried < p.Failures {
		// A second's delay instead of the exponential back-off keeps the
		// demo quick to watch.
		return RetryAfter(time.Second, fmt.Errorf("%s: attempt %d of the %d that fail on purpose", TypeFlaky, job.Retried+1, p.Failures))
	}
	_, err := fmt.Fprintf(job.Result, "succeeded on attempt %d", job.Retried+1)
	return err
}

package tasks

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// TypeFail always fails. It exists so a new user (and the tests) can see
// failures, retries, archived tasks and error traces end to end.
const TypeFail = "demo:fail"

// Fail is the catalogue entry of demo:fail.
var Fail = Define(TypeFail, Defaults{Queue: QueueLow, Timeout: time.Minute, MaxRetry: 0}, handleFail)

// FailPayload is demo:fail's payload.
type FailPayload struct {
	Message string `json:"message,omitempty"`
}

// Validate bounds the message and fills in the default one.
func (p *FailPayload) Validate() error {
	if len(p.Message) > EchoMaxArg {
		return &ValidationError{Fields: []FieldError{{Field: "message", Message: fmt.Sprintf("must be at most %d bytes", EchoMaxArg)}}}
	}
	if p.Message == "" {
		p.Message = "demo failure"
	}
	return nil
}

func handleFail(_ context.Context, p FailPayload, _ Job) error {
	return fmt.Errorf("%s: %w", TypeFail, errors.New(p.Message))
}

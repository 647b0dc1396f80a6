package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// TypeFail always fails. It exists so a new user (and the tests) can see
// failures, retries, archived tasks and error traces end to end.
const TypeFail = "demo:fail"

// FailPayload is demo:fail's payload.
type FailPayload struct {
	Message string `json:"message,omitempty"`
}

func failSpec() Spec {
	return Spec{
		Type:     TypeFail,
		Queue:    QueueLow,
		Timeout:  time.Minute,
		MaxRetry: 0,
		Validate: func(raw json.RawMessage) ([]byte, error) {
			var p FailPayload
			if err := decodeStrict(raw, &p, "payload"); err != nil {
				return nil, err
			}
			if len(p.Message) > EchoMaxArg {
				return nil, &ValidationError{Fields: []FieldError{{Field: "payload.message", Message: fmt.Sprintf("must be at most %d bytes", EchoMaxArg)}}}
			}
			if p.Message == "" {
				p.Message = "demo failure"
			}
			return json.Marshal(p)
		},
		Handler: func(_ context.Context, t *asynq.Task) error {
			var p FailPayload
			_ = json.Unmarshal(t.Payload(), &p)
			return fmt.Errorf("%s: %w", TypeFail, errors.New(p.Message))
		},
	}
}

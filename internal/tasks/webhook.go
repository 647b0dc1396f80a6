package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// TypeWebhook delivers a JSON body to a URL: a realistic task that talks to
// the outside, is retried with back-off (or when the receiver says, with
// Retry-After), and carries its task ID as an idempotency key so that the
// receiver can ignore a delivery it already has.
const TypeWebhook = "demo:webhook"

// WebhookMaxBody bounds the body a webhook carries: half the default
// payload limit, so the whole payload (URL, headers, body) always fits.
const WebhookMaxBody = 32 << 10

// WebhookSender delivers webhooks; internal/webhook's Client is the real
// one, built from WEBHOOK_ALLOWED_HOSTS by internal/stack.
type WebhookSender interface {
	// Check refuses a URL the sender would never deliver to, with a
	// message for the caller.
	Check(url string) error
	// Send POSTs body to url with the Idempotency-Key header and returns
	// the answer's status. Its error may say Permanent() (retrying cannot
	// help) or RetryAfter() (the delay the receiver asked for).
	Send(ctx context.Context, url string, body []byte, idempotencyKey string) (int, error)
}

// WebhookPayload is demo:webhook's payload.
type WebhookPayload struct {
	URL string `json:"url"`
	// Body is the JSON to deliver; {} when left out.
	Body json.RawMessage `json:"body,omitempty"`
}

// Validate checks what does not depend on the allowlist (Webhook's Check
// does that).
func (p *WebhookPayload) Validate() error {
	var v ValidationError
	if p.URL == "" {
		v.Add("url", "is required")
	}
	if len(p.Body) > WebhookMaxBody {
		v.Add("body", fmt.Sprintf("must be at most %d bytes of JSON", WebhookMaxBody))
	}
	if len(p.Body) == 0 || string(p.Body) == "null" {
		p.Body = json.RawMessage(`{}`)
	}
	return v.Err()
}

// Webhook is the catalogue entry of demo:webhook, delivering through s
// (nil: every URL is refused).
func Webhook(s WebhookSender) Spec {
	if s == nil {
		s = noWebhooks{}
	}
	return Define(TypeWebhook, Defaults{Queue: QueueDefault, Timeout: time.Minute, MaxRetry: 10}, deliver(s),
		Check(func(p *WebhookPayload) error {
			if err := s.Check(p.URL); err != nil {
				return &ValidationError{Fields: []FieldError{{Field: "url", Message: err.Error()}}}
			}
			return nil
		}))
}

// deliver is demo:webhook's handler: the task ID is the idempotency key,
// a failure retrying cannot fix is not retried, and a Retry-After is
// honoured (Catalogue.RetryDelay).
func deliver(s WebhookSender) func(context.Context, WebhookPayload, Job) error {
	return func(ctx context.Context, p WebhookPayload, job Job) error {
		status, err := s.Send(ctx, p.URL, p.Body, job.ID)
		var permanent interface{ Permanent() bool }
		var ra interface{ RetryAfter() time.Duration }
		switch {
		case err == nil:
			_, err = fmt.Fprintf(job.Result, "delivered: HTTP %d", status)
			return err
		case errors.As(err, &permanent) && permanent.Permanent():
			return fmt.Errorf("%s: %w: %w", TypeWebhook, err, SkipRetry)
		case errors.As(err, &ra) && ra.RetryAfter() > 0:
			return RetryAfter(ra.RetryAfter(), fmt.Errorf("%s: %w", TypeWebhook, err))
		}
		return fmt.Errorf("%s: %w", TypeWebhook, err)
	}
}

type noWebhooks struct{}

func (noWebhooks) Check(string) error {
	return errors.New("webhooks are off: no host is allowed (WEBHOOK_ALLOWED_HOSTS is empty)")
}

func (noWebhooks) Send(context.Context, string, []byte, string) (int, error) {
	return 0, noWebhooks{}.Check("")
}

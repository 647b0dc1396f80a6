package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"taskstack/internal/webhook"
)

func webhookClient(t *testing.T, hosts ...string) *webhook.Client {
	t.Helper()
	allow, err := webhook.ParseAllowlist(hosts)
	if err != nil {
		t.Fatal(err)
	}
	return webhook.NewClient(webhook.Options{Allow: allow, Timeout: 2 * time.Second})
}

func webhookCatalogue(t *testing.T, hosts ...string) *Catalogue {
	t.Helper()
	return NewCatalogueWith(Deps{Webhook: webhookClient(t, hosts...)})
}

// TestWebhookRefusedAtEnqueue: a URL off the allowlist is refused by
// Prepare, so the API answers 422 naming payload.url before anything is
// enqueued.
func TestWebhookRefusedAtEnqueue(t *testing.T) {
	t.Parallel()
	c := webhookCatalogue(t, "hooks.example.com")
	for _, tt := range []struct{ payload, field, msg string }{
		{`{"url":"https://evil.example.net/x"}`, "payload.url", "not on the allowlist"},
		{`{"url":"http://127.0.0.1/x"}`, "payload.url", "not on the allowlist"},
		{`{"url":"http://169.254.169.254/latest"}`, "payload.url", "not on the allowlist"},
		{`{}`, "payload.url", "is required"},
		{`{"url":"https://hooks.example.com/x","body":"` + strings.Repeat("x", WebhookMaxBody) + `"}`, "payload.body", "at most"},
	} {
		_, err := c.Prepare(Request{Type: TypeWebhook, Payload: json.RawMessage(tt.payload)})
		var verr *ValidationError
		if !errors.As(err, &verr) || verr.Fields[0].Field != tt.field || !strings.Contains(verr.Fields[0].Message, tt.msg) {
			t.Errorf("Prepare(%s) = %v, want %s: %s", tt.payload, err, tt.field, tt.msg)
		}
	}
	p, err := c.Prepare(Request{Type: TypeWebhook, Payload: json.RawMessage(`{"url":"https://hooks.example.com/x"}`)})
	if err != nil || string(p.Payload) != `{"url":"https://hooks.example.com/x","body":{}}` || p.MaxRetry != 10 {
		t.Errorf("an allowed URL: %s, %+v, %v", p.Payload, p, err)
	}
	// Without an allowlist (NewCatalogue) every URL is refused, saying why.
	_, err = NewCatalogue().Prepare(Request{Type: TypeWebhook, Payload: json.RawMessage(`{"url":"https://hooks.example.com/x"}`)})
	if err == nil || !strings.Contains(err.Error(), "WEBHOOK_ALLOWED_HOSTS") {
		t.Errorf("no allowlist: %v", err)
	}
}

// TestWebhookHandler runs demo:webhook's handler against an httptest
// server (loopback, so allowlisted explicitly): delivered with the task ID
// as Idempotency-Key; 503 with Retry-After retried after that delay; 404
// not retried.
func TestWebhookHandler(t *testing.T) {
	t.Parallel()
	var status atomic.Int32
	var key, body atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key.Store(r.Header.Get("Idempotency-Key"))
		b, _ := io.ReadAll(r.Body)
		body.Store(string(b))
		if s := status.Load(); s == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(int(s))
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	t.Cleanup(srv.Close)
	sender := webhookClient(t, "127.0.0.1")
	c := NewCatalogueWith(Deps{Webhook: sender})
	p, err := c.Prepare(Request{Type: TypeWebhook, Payload: json.RawMessage(`{"url":"` + srv.URL + `/hook","body":{"order":42}}`)})
	if err != nil {
		t.Fatal(err)
	}
	var payload WebhookPayload
	if err := json.Unmarshal(p.Payload, &payload); err != nil {
		t.Fatal(err)
	}
	run := func() (string, error) {
		var res strings.Builder
		err := deliver(sender)(context.Background(), payload, Job{ID: "task-1", Result: &res})
		return res.String(), err
	}

	status.Store(http.StatusOK)
	res, err := run()
	if err != nil || res != "delivered: HTTP 200" {
		t.Fatalf("delivery: %q, %v", res, err)
	}
	if key.Load() != "task-1" || body.Load() != `{"order":42}` {
		t.Errorf("received key %v body %v", key.Load(), body.Load())
	}

	status.Store(http.StatusServiceUnavailable)
	_, err = run()
	if err == nil || errors.Is(err, SkipRetry) {
		t.Fatalf("503: %v, want a retryable error", err)
	}
	if d := c.RetryDelay(1, err, nil); d != 3*time.Second {
		t.Errorf("retry delay after Retry-After: 3 = %s, want 3s", d)
	}

	status.Store(http.StatusNotFound)
	if _, err = run(); !errors.Is(err, SkipRetry) {
		t.Errorf("404: %v, want no retry", err)
	}
	// Retry-After is capped; an error without one gets asynq's back-off.
	if d := c.RetryDelay(1, RetryAfter(48*time.Hour, errors.New("x")), nil); d != MaxRetryAfter {
		t.Errorf("a huge Retry-After gives %s, want the cap %s", d, MaxRetryAfter)
	}
	if d := c.RetryDelay(1, errors.New("x"), asynq.NewTask("t", nil)); d <= 0 {
		t.Errorf("default back-off %s", d)
	}
}

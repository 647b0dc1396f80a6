package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"taskstack/internal/tasks"
	"taskstack/internal/webhook"
	"taskstack/internal/worker"
)

// greetPayload is a throwaway task type's payload, defined here and
// nowhere else: what docs/tasks.md walks through.
type greetPayload struct {
	Name  string `json:"name"`
	Times int    `json:"times"`
}

func (p *greetPayload) Validate() error {
	var v tasks.ValidationError
	if p.Name == "" {
		v.Add("name", "is required")
	}
	if p.Times == 0 {
		p.Times = 1 // a default, filled in before the task is enqueued
	}
	if p.Times < 1 || p.Times > 3 {
		v.Add("times", "must be between 1 and 3")
	}
	return v.Err()
}

// TestATypeDefinedInOneCallRunsEndToEnd: a task type made by tasks.Define
// alone (payload struct, Validate, handler), in a catalogue of its own, is
// validated at enqueue with field-named errors, enqueued through the
// store, run by a real worker on a real Redis, and its result read back
// through the store. Nothing else in the code knows it.
func TestATypeDefinedInOneCallRunsEndToEnd(t *testing.T) {
	t.Parallel()
	greet := tasks.Define("test:greet", tasks.Defaults{Queue: tasks.QueueHigh, Timeout: 10 * time.Second, MaxRetry: 1},
		func(_ context.Context, p greetPayload, job tasks.Job) error {
			_, err := fmt.Fprint(job.Result, strings.Repeat("hello "+p.Name+"! ", p.Times))
			return err
		})
	b := setup(t, tasks.NewCatalogueOf(greet))
	b.start(t, worker.Options{Concurrency: 2})

	_, err := b.cat.Prepare(tasks.Request{Type: "test:greet", Payload: json.RawMessage(`{"times":9,"colour":"red"}`)})
	var verr *tasks.ValidationError
	if !errors.As(err, &verr) || len(verr.Fields) != 1 || verr.Fields[0].Field != "payload.colour" {
		t.Errorf("unknown field: %v, want payload.colour refused", err)
	}
	_, err = b.cat.Prepare(tasks.Request{Type: "test:greet", Payload: json.RawMessage(`{"times":9}`)})
	if !errors.As(err, &verr) || len(verr.Fields) != 2 || verr.Fields[0].Field != "payload.name" || verr.Fields[1].Field != "payload.times" {
		t.Errorf("invalid payload: %v, want payload.name and payload.times", err)
	}

	id := b.enqueue(t, tasks.Request{Type: "test:greet", Payload: json.RawMessage(`{"name":"ada","times":2}`)})
	b.waitState(t, tasks.QueueHigh, id, asynq.TaskStateCompleted)
	task, err := b.store.Task(context.Background(), tasks.QueueHigh, id)
	if err != nil {
		t.Fatal(err)
	}
	if string(task.Result) != "hello ada! hello ada! " || task.Type != "test:greet" {
		t.Errorf("result %q of %s", task.Result, task.Type)
	}
	if n, err := b.metric("taskstack_tasks_processed_total", map[string]string{"type": "test:greet", "queue": "high", "outcome": "success"}); err != nil || n != 1 {
		t.Errorf("the worker's metrics know the new type: %v, %v", n, err)
	}
}

// TestWebhookRetriesHonourRetryAfter runs demo:webhook on a real worker
// against an httptest receiver (loopback, allowlisted explicitly) that
// answers 503 with Retry-After: 1 once: the task is retried no sooner than
// asked, with the same Idempotency-Key, and completes.
func TestWebhookRetriesHonourRetryAfter(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var keys []string
	var at []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		defer mu.Unlock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		at = append(at, time.Now())
		if len(keys) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	allow, err := webhook.ParseAllowlist([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cat := tasks.NewCatalogueWith(tasks.Deps{Webhook: webhook.NewClient(webhook.Options{Allow: allow})})
	b := setup(t, cat)
	b.start(t, worker.Options{Concurrency: 2, RetryDelay: cat.RetryDelay})

	id := b.enqueue(t, tasks.Request{Type: tasks.TypeWebhook, Payload: json.RawMessage(`{"url":"` + srv.URL + `/in","body":{"event":"paid"}}`)})
	ti := b.waitState(t, tasks.QueueDefault, id, asynq.TaskStateCompleted)
	if string(ti.Result) != "delivered: HTTP 202" || ti.Retried != 1 {
		t.Errorf("result %q after %d retries, want delivered after 1", ti.Result, ti.Retried)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(keys) != 2 || keys[0] != id || keys[1] != id {
		t.Errorf("Idempotency-Keys %v, want the task ID %s twice", keys, id)
	}
	gap := at[1].Sub(at[0])
	if gap < time.Second {
		t.Errorf("retried after %s, before the 1s the receiver asked for", gap)
	}
	t.Logf("retry after Retry-After: 1 came %s later (asynq moves due retries to pending every ~5s)", gap.Round(time.Millisecond))
}

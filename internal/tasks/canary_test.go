package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

// TestCanaryIsInternal: the API cannot submit canary:ping (nor is it
// offered), the canary prober can, with its own ID and retention, and the
// page can still filter by it.
func TestCanaryIsInternal(t *testing.T) {
	t.Parallel()
	c := NewCatalogue()
	_, err := c.Prepare(Request{Type: TypeCanary})
	var verr *ValidationError
	if !errors.As(err, &verr) || !strings.Contains(verr.Error(), "cannot be submitted") || strings.Contains(verr.Error(), "known types: "+TypeCanary) {
		t.Errorf("API submit of %s = %v; want refused naming type", TypeCanary, err)
	}
	p, err := c.Prepare(Request{Type: TypeCanary, Queue: QueueLow, ID: "canary:low:1", Retention: time.Minute, Internal: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.Queue != QueueLow || p.ID != "canary:low:1" || p.Retention != time.Minute || p.MaxRetry != 0 || string(p.Payload) != "{}" {
		t.Errorf("prepared canary %+v", p)
	}
	if slices.Contains(c.Submittable(), TypeCanary) || !slices.Contains(c.Types(), TypeCanary) || !slices.Contains(c.Submittable(), TypeFlaky) {
		t.Errorf("Submittable %v, Types %v: the canary is a type but not submittable", c.Submittable(), c.Types())
	}
}

type recorded struct {
	queue        string
	enqueued, at time.Time
}

type recorder struct{ got []recorded }

func (r *recorder) CanarySucceeded(_ context.Context, queue string, enqueuedAt, doneAt time.Time) {
	r.got = append(r.got, recorded{queue, enqueuedAt, doneAt})
}

// TestCanaryHandlerRecords: the handler reports the enqueue time (from the
// task's headers) to the recorder. The queue comes from asynq's context,
// which only a server makes: internal/worker's tests check it.
func TestCanaryHandlerRecords(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	enq := time.Now().Add(-time.Second).Truncate(time.Millisecond)
	headers := map[string]string{HeaderEnqueuedAt: strconv.FormatInt(enq.UnixNano(), 10)}
	ctx := context.Background()
	if err := Canary(rec).Handler()(ctx, asynq.NewTaskWithHeaders(TypeCanary, []byte(`{}`), headers)); err != nil {
		t.Fatal(err)
	}
	if len(rec.got) != 1 || !rec.got[0].enqueued.Equal(enq) || rec.got[0].at.Before(enq) {
		t.Errorf("recorded %+v; want one success enqueued at %v", rec.got, enq)
	}
	// Without a recorder the canary still completes.
	if err := Canary(nil).Handler()(ctx, asynq.NewTask(TypeCanary, []byte(`{}`))); err != nil {
		t.Errorf("canary without a recorder: %v", err)
	}
}

// TestFlakyFailsThenSucceeds: demo:flaky fails its first attempts, asking
// for a one-second retry, then succeeds.
func TestFlakyFailsThenSucceeds(t *testing.T) {
	t.Parallel()
	p := FlakyPayload{Failures: 2}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	for retried := range 2 {
		err := handleFlaky(context.Background(), p, Job{Retried: retried})
		var ra interface{ RetryAfter() time.Duration }
		if err == nil || !errors.As(err, &ra) || ra.RetryAfter() != time.Second {
			t.Errorf("attempt %d: %v; want a failure retried after 1s", retried+1, err)
		}
	}
	var out strings.Builder
	if err := handleFlaky(context.Background(), p, Job{Retried: 2, Result: &out}); err != nil || out.String() != "succeeded on attempt 3" {
		t.Errorf("attempt 3: %v, result %q", err, out.String())
	}
	var d FlakyPayload
	if err := json.Unmarshal([]byte(`{}`), &d); err != nil || d.Validate() != nil || d.Failures != 1 {
		t.Errorf("default failures %d, want 1", d.Failures)
	}
}

package tasks

import (
	"context"
	"time"
)

// TypeCanary is the canary's task: it does nothing but complete, so that
// its enqueue-to-completion time measures the whole path (app or
// scheduler, Redis, a worker's dequeue loop) on each queue. Canary tasks
// stay out of lists unless asked for by type.
const TypeCanary = "canary:ping"

// CanaryRecorder records a canary's completion on queue.
type CanaryRecorder interface {
	CanarySucceeded(ctx context.Context, queue string, enqueuedAt, doneAt time.Time)
}

// CanaryPayload is empty: the canary carries nothing.
type CanaryPayload struct{}

// Validate accepts the empty payload.
func (*CanaryPayload) Validate() error { return nil }

// Canary is the catalogue entry of canary:ping, recording with r. No
// retries: a failed canary is a missing success, which is the signal.
func Canary(r CanaryRecorder) Spec {
	return Define(TypeCanary, Defaults{Queue: QueueHigh, Timeout: 30 * time.Second, MaxRetry: 0, Internal: true},
		func(ctx context.Context, _ CanaryPayload, job Job) error {
			if r != nil {
				r.CanarySucceeded(ctx, job.Queue, job.EnqueuedAt, time.Now())
			}
			return nil
		})
}

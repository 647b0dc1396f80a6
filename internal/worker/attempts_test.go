package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"taskstack/internal/store"
	"taskstack/internal/tasks"
	"taskstack/internal/worker"
)

// TestAttemptsRecorded: a task that fails once then succeeds leaves two
// attempt records, in order, with the failure's error; a canary leaves
// none; the last record is written before Shutdown returns.
func TestAttemptsRecorded(t *testing.T) {
	t.Parallel()
	b := setup(t, tasks.NewCatalogue())
	w := b.start(t, worker.Options{Concurrency: 2, Attempts: b.store, RetryDelay: func(int, error, *asynq.Task) time.Duration { return 0 }})
	id := b.enqueue(t, tasks.Request{Type: tasks.TypeFlaky, Payload: json.RawMessage(`{"failures":1}`), Queue: "high"})
	b.waitState(t, "high", id, asynq.TaskStateCompleted)
	canary, err := b.cat.Prepare(tasks.Request{Type: tasks.TypeCanary, Queue: "low", ID: "canary:low:1", Internal: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Enqueue(context.Background(), canary); err != nil {
		t.Fatal(err)
	}
	b.waitState(t, "low", "canary:low:1", asynq.TaskStateCompleted)
	w.Shutdown() // flushes the attempt log

	task, err := b.store.Task(context.Background(), "high", id)
	if err != nil {
		t.Fatal(err)
	}
	if len(task.Attempts) != 2 {
		t.Fatalf("%d attempts recorded, want 2: %+v", len(task.Attempts), task.Attempts)
	}
	first, second := task.Attempts[0], task.Attempts[1]
	if first.N != 1 || first.Error != "demo:flaky: attempt 1 of the 1 that fail on purpose" || second.N != 2 || second.Error != "" {
		t.Errorf("attempts %+v", task.Attempts)
	}
	if first.Worker == "" || first.FinishedAt.Before(first.StartedAt) || second.StartedAt.Before(first.FinishedAt) {
		t.Errorf("attempt times or worker wrong: %+v", task.Attempts)
	}
	c, err := b.store.Task(context.Background(), "low", "canary:low:1")
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	if len(c.Attempts) != 0 {
		t.Errorf("canary attempts recorded: %+v", c.Attempts)
	}
}

package store_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hibiken/asynq"

	"taskstack/internal/store"
	"taskstack/internal/tasks"
	"taskstack/internal/testsupport"
)

// TestOrphaned runs real tasks on a real asynq server, so the leases are
// asynq's own, and reads them with the store's clock moved past their end:
// every running task is then an orphan, aged by how far the clock moved
// past the lease. Tasks that finished leave the lease set.
func TestOrphaned(t *testing.T) {
	t.Parallel()
	r := testsupport.StartRedis(t)
	rc := r.Client(t)
	var skew atomic.Int64 // added to the store's clock
	st := store.New(store.Options{
		Redis: rc, Retention: time.Hour, Queues: tasks.Queues(),
		Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) },
	})
	ctx := context.Background()
	cat := tasks.NewCatalogue()
	enqueue := func(queue string) string {
		p, err := cat.Prepare(tasks.Request{Type: tasks.TypeEcho, Queue: queue, Payload: []byte(`{"arg":"x","sleep":"0s"}`)})
		if err != nil {
			t.Fatal(err)
		}
		e, err := st.Enqueue(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return e.ID
	}
	ids := map[string]string{enqueue("default"): "default", enqueue("default"): "default", enqueue("high"): "high"}

	release := make(chan struct{})
	srv := asynq.NewServerFromRedisClient(rc, asynq.Config{
		Queues: map[string]int{"high": 1, "default": 1, "low": 1}, Concurrency: 10,
		TaskCheckInterval: 10 * time.Millisecond, ShutdownTimeout: time.Second, LogLevel: asynq.FatalLevel,
	})
	if err := srv.Start(asynq.HandlerFunc(func(ctx context.Context, _ *asynq.Task) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	testsupport.Eventually(t, 15*time.Second, "three tasks active", func() bool {
		for id, q := range ids {
			if task, err := st.Task(ctx, q, id); err != nil || task.State != "active" {
				return false
			}
		}
		return true
	})

	orphaned := func() []store.Orphans {
		t.Helper()
		got, err := st.Orphaned(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if diff := cmp.Diff([]store.Orphans{{Queue: "high"}, {Queue: "default"}, {Queue: "low"}}, orphaned()); diff != "" {
		t.Errorf("live leases counted as orphans (-want +got):\n%s", diff)
	}
	// A lease ends 30 s after it was last renewed, at most 5 s ago: with
	// the clock 45 s ahead, each ran out 15-20 s ago (whole seconds).
	skew.Store(int64(45 * time.Second))
	got := orphaned()
	want := []store.Orphans{{Queue: "high", Count: 1}, {Queue: "default", Count: 2}, {Queue: "low"}}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(store.Orphans{}, "Oldest")); diff != "" {
		t.Errorf("expired leases (-want +got):\n%s", diff)
	}
	for _, o := range got[:2] {
		if o.Oldest < 14*time.Second || o.Oldest > 21*time.Second {
			t.Errorf("%s: oldest lease ran out %s ago, want 15-20s", o.Queue, o.Oldest)
		}
	}

	close(release)
	testsupport.Eventually(t, 15*time.Second, "tasks completed", func() bool {
		for id, q := range ids {
			if task, err := st.Task(ctx, q, id); err != nil || task.State != "completed" {
				return false
			}
		}
		return true
	})
	if diff := cmp.Diff([]store.Orphans{{Queue: "high"}, {Queue: "default"}, {Queue: "low"}}, orphaned()); diff != "" {
		t.Errorf("finished tasks counted as orphans (-want +got):\n%s", diff)
	}
}

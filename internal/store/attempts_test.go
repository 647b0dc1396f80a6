package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"taskstack/internal/store"
	"taskstack/internal/tasks"
)

// TestAttempts: attempts are kept with their task, the last MaxAttempts,
// errors bounded, for at least the retention, read with the task (by queue
// or by ID alone), and deleted with it.
func TestAttempts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	e := b.enqueue(t, echo("a", "0s", "default"))
	start := time.UnixMilli(1_800_000_000_000)
	var as []store.Attempt
	for n := 1; n <= store.MaxAttempts+5; n++ {
		as = append(as, store.Attempt{Queue: "default", TaskID: e.ID, N: n, StartedAt: start.Add(time.Duration(n) * time.Second),
			FinishedAt: start.Add(time.Duration(n)*time.Second + 250*time.Millisecond), Error: fmt.Sprintf("boom %d", n), Worker: "w1"})
	}
	as[len(as)-1].Error = strings.Repeat("x", store.MaxAttemptError+100)
	if err := b.store.RecordAttempts(ctx, as[:10]); err != nil {
		t.Fatal(err)
	}
	if err := b.store.RecordAttempts(ctx, as[10:]); err != nil {
		t.Fatal(err)
	}
	for _, read := range []func() (store.Task, error){
		func() (store.Task, error) { return b.store.Task(ctx, "default", e.ID) },
		func() (store.Task, error) { return b.store.Find(ctx, e.ID) },
	} {
		task, err := read()
		if err != nil {
			t.Fatal(err)
		}
		got := task.Attempts
		if len(got) != store.MaxAttempts || got[0].N != 6 || got[len(got)-1].N != store.MaxAttempts+5 {
			t.Fatalf("%d attempts kept, %d..%d; want the last %d", len(got), got[0].N, got[len(got)-1].N, store.MaxAttempts)
		}
		first := got[0]
		if first.Error != "boom 6" || first.Worker != "w1" || !first.StartedAt.Equal(start.Add(6*time.Second)) ||
			first.FinishedAt.Sub(first.StartedAt) != 250*time.Millisecond || first.Queue != "default" || first.TaskID != e.ID {
			t.Errorf("attempt read back as %+v", first)
		}
		if l := len(got[len(got)-1].Error); l > store.MaxAttemptError+len("…") {
			t.Errorf("an attempt's error kept at %d bytes", l)
		}
	}
	key := "taskstack:{default}:attempts:" + e.ID
	if ttl := b.rc.TTL(ctx, key).Val(); ttl < 23*time.Hour {
		t.Errorf("attempts kept for %s, want at least a day", ttl)
	}
	if _, err := b.store.Delete(ctx, "default", e.ID); err != nil {
		t.Fatal(err)
	}
	if n := b.rc.Exists(ctx, key).Val(); n != 0 {
		t.Error("attempts outlived their deleted task")
	}
	// A task without a history reads with none.
	other := b.enqueue(t, tasks.Request{Type: tasks.TypeEcho, Payload: []byte(`{"arg":"b"}`), Queue: "low"})
	if task, err := b.store.Task(ctx, "low", other.ID); err != nil || len(task.Attempts) != 0 {
		t.Errorf("fresh task: %d attempts, %v", len(task.Attempts), err)
	}
}

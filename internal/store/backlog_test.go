package store_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"taskstack/internal/store"
	"taskstack/internal/tasks"
	"taskstack/internal/testsupport"
)

// Backlog sums the pending tasks of the queues asked for, takes the oldest
// task's age over them (by the store's clock), and leaves paused queues
// out.
func TestBacklog(t *testing.T) {
	t.Parallel()
	r := testsupport.StartRedis(t)
	rc := r.Client(t)
	var skew atomic.Int64
	st := store.New(store.Options{
		Redis: rc, Retention: time.Hour, Queues: tasks.Queues(),
		Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) },
	})
	ctx := context.Background()
	all := []string{"high", "default", "low"}
	b, err := st.Backlog(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	if b != (store.Backlog{}) {
		t.Errorf("empty queues: %+v", b)
	}
	cat := tasks.NewCatalogue()
	for _, q := range []string{"high", "default", "default", "low"} {
		p, err := cat.Prepare(tasks.Request{Type: tasks.TypeEcho, Queue: q, Payload: []byte(`{"arg":"x","sleep":"0s"}`)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Enqueue(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	skew.Store(int64(time.Hour))
	b, err = st.Backlog(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	if b.Pending != 4 || b.Latency < time.Hour {
		t.Errorf("backlog %+v, want 4 pending at least 1h old", b)
	}
	if b, err = st.Backlog(ctx, []string{"default"}); err != nil || b.Pending != 2 {
		t.Errorf("default only: %+v, %v", b, err)
	}
	insp := asynq.NewInspectorFromRedisClient(rc)
	if err := insp.PauseQueue("default"); err != nil {
		t.Fatal(err)
	}
	if b, err = st.Backlog(ctx, all); err != nil || b.Pending != 2 {
		t.Errorf("default paused: %+v, %v; want the 2 of high and low", b, err)
	}
	// The script survives a SCRIPT FLUSH (NOSCRIPT is retried after a load).
	if err := rc.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if b, err = st.Backlog(ctx, all); err != nil || b.Pending != 2 {
		t.Errorf("after SCRIPT FLUSH: %+v, %v", b, err)
	}
}

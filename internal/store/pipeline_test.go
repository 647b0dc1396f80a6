package store_test

import (
	"context"
	"testing"
	"time"

	"taskstack/internal/store"
	"taskstack/internal/tasks"
	"taskstack/internal/testsupport"
)

// Every pipelined script read (lists, queue statistics, search, orphans)
// survives a SCRIPT FLUSH: Redis restarted or flushed its scripts, the
// pipeline answers NOSCRIPT, and the store loads the script and sends it
// again instead of failing the read.
func TestPipelinedReadsSurviveScriptFlush(t *testing.T) {
	t.Parallel()
	r := testsupport.StartRedis(t)
	rc := r.Client(t)
	st := store.New(store.Options{Redis: rc, Retention: time.Hour, Queues: tasks.Queues()})
	ctx := context.Background()
	p, err := tasks.NewCatalogue().Prepare(tasks.Request{Type: tasks.TypeEcho, Queue: "high", Payload: []byte(`{"arg":"x","sleep":"0s"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Enqueue(ctx, p); err != nil {
		t.Fatal(err)
	}
	reads := []struct {
		name string
		read func() (int, error) // how many tasks it saw, where it counts them
	}{
		{"List", func() (int, error) {
			page, _, err := st.List(ctx, store.Query{Page: 1, PageSize: 10})
			return page.Total, err
		}},
		{"Queues", func() (int, error) {
			qs, err := st.Queues(ctx)
			n := 0
			for _, q := range qs {
				n += q.Pending
			}
			return n, err
		}},
		{"Search", func() (int, error) {
			res, err := st.Search(ctx, store.SearchQuery{Type: tasks.TypeEcho})
			return len(res.Tasks), err
		}},
		{"Orphaned", func() (int, error) { _, err := st.Orphaned(ctx); return 1, err }},
	}
	for _, rd := range reads {
		if err := rc.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if n, err := rd.read(); err != nil || n != 1 {
			t.Errorf("%s after SCRIPT FLUSH: %d tasks, %v; want 1, no error", rd.name, n, err)
		}
	}
}

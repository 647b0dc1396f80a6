package store_test

import (
	"context"
	"testing"
	"time"

	"taskstack/internal/store"
	"taskstack/internal/tasks"
)

// TestHiddenTypes: lists and searches leave out hidden types (the canary)
// and their count, unless the search asks for that type; a task's own
// retention replaces the store's.
func TestHiddenTypes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, arg := range []string{"a", "b", "c"} {
		b.enqueue(t, echo(arg, "0s", "high"))
	}
	c := b.enqueue(t, tasks.Request{Type: tasks.TypeCanary, Queue: "high", ID: "canary:high:1", Retention: time.Minute, Internal: true})
	hide := []string{tasks.TypeCanary}
	ctx := context.Background()

	for _, tt := range []struct {
		name         string
		q            store.Query
		tasks, total int
	}{
		{"shown", store.Query{States: []string{"pending"}, Queues: []string{"high"}}, 4, 4},
		{"hidden, one queue and state", store.Query{States: []string{"pending"}, Queues: []string{"high"}, Hide: hide}, 3, 3},
		{"hidden, merged", store.Query{Hide: hide}, 3, 3},
	} {
		p, _, err := b.store.List(ctx, tt.q)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Tasks) != tt.tasks || p.Total != tt.total {
			t.Errorf("%s: %d tasks of %d, want %d of %d", tt.name, len(p.Tasks), p.Total, tt.tasks, tt.total)
		}
		for _, task := range p.Tasks {
			if tt.q.Hide != nil && task.Type == tasks.TypeCanary {
				t.Errorf("%s: canary %s listed", tt.name, task.ID)
			}
		}
	}
	for _, tt := range []struct {
		typ  string
		want int
	}{{"", 3}, {tasks.TypeCanary, 1}, {tasks.TypeEcho, 3}} {
		res, err := b.store.Search(ctx, store.SearchQuery{Type: tt.typ, States: []string{"pending"}, Hide: hide})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Tasks) != tt.want {
			t.Errorf("search type %q: %d tasks, want %d", tt.typ, len(res.Tasks), tt.want)
		}
	}

	info, err := b.insp.GetTaskInfo("high", c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if info.Retention != time.Minute {
		t.Errorf("canary retention %s, want its own 1m (the store keeps 1h)", info.Retention)
	}
}

package store_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protowire"

	"taskstack/internal/store"
	"taskstack/internal/tasks"
	"taskstack/internal/testsupport"
)

type bundle struct {
	rc    *redis.Client
	store *store.Store
	insp  *asynq.Inspector
	cat   *tasks.Catalogue
}

func setup(t *testing.T) *bundle {
	t.Helper()
	r := testsupport.StartRedis(t)
	rc := r.Client(t)
	return &bundle{
		rc:    rc,
		store: store.New(store.Options{Redis: rc, Retention: time.Hour, Queues: tasks.Queues(), Logger: slog.New(slog.DiscardHandler)}),
		insp:  asynq.NewInspectorFromRedisClient(rc),
		cat:   tasks.NewCatalogue(),
	}
}

func (b *bundle) enqueue(t *testing.T, req tasks.Request) store.Enqueued {
	t.Helper()
	p, err := b.cat.Prepare(req)
	if err != nil {
		t.Fatal(err)
	}
	e, err := b.store.Enqueue(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func echo(arg, sleep, queue string) tasks.Request {
	return tasks.Request{Type: tasks.TypeEcho, Payload: []byte(`{"arg":"` + arg + `","sleep":"` + sleep + `"}`), Queue: queue}
}

// everyState puts one task of "high" in each state asynq has, with real
// asynq servers doing what they do in production, and returns their IDs by
// state. The active task stays active until the test ends.
func (b *bundle) everyState(t *testing.T) map[string]string {
	t.Helper()
	ids := map[string]string{}
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	started := make(chan struct{}, 1)
	mux := asynq.NewServeMux()
	mux.HandleFunc(tasks.TypeEcho, func(ctx context.Context, task *asynq.Task) error {
		switch string(task.Payload()) {
		case `{"arg":"active","sleep":"0s"}`:
			started <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
			return ctx.Err()
		case `{"arg":"retry","sleep":"0s"}`, `{"arg":"archived","sleep":"0s"}`:
			return errors.New("failed on purpose")
		}
		_, err := task.ResultWriter().Write([]byte("done:" + string(task.Payload())))
		return err
	})
	srv := asynq.NewServerFromRedisClient(b.rc, asynq.Config{
		Queues: map[string]int{"high": 1}, Concurrency: 4, TaskCheckInterval: 10 * time.Millisecond,
		RetryDelayFunc: func(int, error, *asynq.Task) time.Duration { return time.Hour },
		LogLevel:       asynq.FatalLevel, ShutdownTimeout: time.Second,
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)

	ids["active"] = b.enqueue(t, echo("active", "0s", "high")).ID
	testsupport.Receive(t, started, 15*time.Second, "the active task's handler to start")
	ids["completed"] = b.enqueue(t, echo("completed", "0s", "high")).ID
	r := echo("retry", "0s", "high")
	r.MaxRetry = new(2)
	ids["retry"] = b.enqueue(t, r).ID
	a := echo("archived", "0s", "high")
	a.MaxRetry = new(0)
	ids["archived"] = b.enqueue(t, a).ID
	for _, st := range []string{"completed", "retry", "archived"} {
		testsupport.Eventually(t, 10*time.Second, st, func() bool {
			ti, err := b.insp.GetTaskInfo("high", ids[st])
			return err == nil && ti.State.String() == st
		})
	}
	srv.Stop() // no more dequeues: what follows stays where it is
	time.Sleep(50 * time.Millisecond)
	ids["pending"] = b.enqueue(t, echo("pending", "0s", "high")).ID
	s := echo("scheduled", "0s", "high")
	s.ProcessIn = "1h"
	ids["scheduled"] = b.enqueue(t, s).ID
	return ids
}

// TestTaskMatchesAsynqInspector: the store reads asynq's data layout
// directly; for a task in every state it must read what asynq's own
// Inspector reads. An asynq upgrade that changes the layout fails here.
func TestTaskMatchesAsynqInspector(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ids := b.everyState(t)
	ctx := context.Background()
	for _, state := range store.States {
		id := ids[state]
		got, err := b.store.Task(ctx, "high", id)
		if err != nil {
			t.Fatalf("%s: %v", state, err)
		}
		want, err := b.insp.GetTaskInfo("high", id)
		if err != nil {
			t.Fatal(err)
		}
		wantView := view{
			ID: want.ID, Queue: want.Queue, Type: want.Type, State: want.State.String(), Payload: string(want.Payload),
			Result: string(want.Result), LastError: want.LastErr, Retried: want.Retried, MaxRetry: want.MaxRetry,
			Timeout: want.Timeout, LastFailedAt: want.LastFailedAt.Unix(), CompletedAt: want.CompletedAt.Unix(),
		}
		if state == "scheduled" || state == "retry" {
			wantView.NextProcessAt = want.NextProcessAt.Unix()
		}
		if diff := cmp.Diff(wantView, viewOf(got)); diff != "" {
			t.Errorf("%s task (-asynq +store):\n%s", state, diff)
		}
		if at, ok := tasks.EnqueuedAt(want.Headers); !ok || !got.EnqueuedAt.Equal(at) {
			t.Errorf("%s: enqueued at %v, want the header's %v", state, got.EnqueuedAt, at)
		}
	}
	if _, err := b.store.Task(ctx, "high", "no-such-id"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown ID: %v, want ErrNotFound", err)
	}
	if _, err := b.store.Task(ctx, "low", ids["pending"]); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a task asked for in another queue: %v, want ErrNotFound", err)
	}
}

// view is the part of a task both readers know, in comparable form.
type view struct {
	ID, Queue, Type, State, Payload, Result, LastError string
	Retried, MaxRetry                                  int
	Timeout                                            time.Duration
	NextProcessAt, LastFailedAt, CompletedAt           int64
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return time.Time{}.Unix()
	}
	return t.Unix()
}

func viewOf(t store.Task) view {
	v := view{
		ID: t.ID, Queue: t.Queue, Type: t.Type, State: t.State, Payload: string(t.Payload), Result: string(t.Result),
		LastError: t.LastError, Retried: t.Retried, MaxRetry: t.MaxRetry, Timeout: t.Timeout,
		LastFailedAt: unix(t.LastFailedAt), CompletedAt: unix(t.CompletedAt),
	}
	if !t.NextProcessAt.IsZero() {
		v.NextProcessAt = t.NextProcessAt.Unix()
	}
	return v
}

func TestQueuesMatchAsynqInspector(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.everyState(t)
	b.enqueue(t, echo("x", "0s", "low"))
	if err := b.store.RegisterQueues(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.insp.PauseQueue("low"); err != nil {
		t.Fatal(err)
	}
	got, err := b.store.Queues(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if qs := []string{got[0].Queue, got[1].Queue, got[2].Queue}; !slices.Equal(qs, tasks.Queues()) {
		t.Fatalf("queues %v, want priority order %v", qs, tasks.Queues())
	}
	for _, q := range got {
		want, err := b.insp.GetQueueInfo(q.Queue)
		if err != nil {
			t.Fatal(err)
		}
		wantStats := store.QueueStats{
			Queue: want.Queue, Pending: want.Pending, Active: want.Active, Scheduled: want.Scheduled,
			Retry: want.Retry, Archived: want.Archived, Completed: want.Completed,
			ProcessedToday: want.Processed, FailedToday: want.Failed, Paused: want.Paused,
		}
		gotStats := q
		gotStats.Latency = 0
		if diff := cmp.Diff(wantStats, gotStats); diff != "" {
			t.Errorf("queue %s (-asynq +store):\n%s", q.Queue, diff)
		}
		if d := q.Latency - want.Latency; d < -time.Second || d > time.Second {
			t.Errorf("queue %s latency %s, asynq says %s", q.Queue, q.Latency, want.Latency)
		}
		if q.Size() != want.Size {
			t.Errorf("queue %s size %d, asynq says %d", q.Queue, q.Size(), want.Size)
		}
	}
}

func TestListEveryStateAndPage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ids := b.everyState(t)
	ctx := context.Background()
	for _, state := range store.States {
		page, _, err := b.store.List(ctx, store.Query{States: []string{state}, Queues: []string{"high"}, Page: 1, PageSize: 10})
		if err != nil {
			t.Fatal(err)
		}
		if page.Total != 1 || len(page.Tasks) != 1 || page.Tasks[0].ID != ids[state] || page.Tasks[0].State != state {
			t.Errorf("list %s: %+v, want the one %s task", state, page, ids[state])
		}
	}
	all, stats, err := b.store.List(ctx, store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if all.Total != 6 || len(all.Tasks) != 6 || len(stats) != 3 {
		t.Errorf("all: total %d, %d tasks, %d queues; want 6, 6, 3", all.Total, len(all.Tasks), len(stats))
	}
	// Newest first: the last two enqueued were pending, then scheduled.
	if all.Tasks[0].ID != ids["scheduled"] || all.Tasks[1].ID != ids["pending"] {
		t.Errorf("newest first: got %s, %s", all.Tasks[0].State, all.Tasks[1].State)
	}
}

func TestPagingWithinOneQueueAndState(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var ids []string
	for i := range 25 {
		ids = append(ids, b.enqueue(t, echo(fmt.Sprint(i), "0s", "default")).ID)
	}
	slices.Reverse(ids) // newest first
	var got []string
	for p := 1; p <= 3; p++ {
		page, _, err := b.store.List(context.Background(), store.Query{States: []string{"pending"}, Queues: []string{"default"}, Page: p, PageSize: 10})
		if err != nil {
			t.Fatal(err)
		}
		if page.Total != 25 {
			t.Errorf("page %d total %d", p, page.Total)
		}
		for _, tk := range page.Tasks {
			got = append(got, tk.ID)
		}
	}
	if diff := cmp.Diff(ids, got); diff != "" {
		t.Errorf("pages 1-3 (-want +got):\n%s", diff)
	}
}

func TestDeepMergedPagesAreRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i := range 1050 {
		b.enqueue(t, echo(fmt.Sprint(i), "0s", tasks.Queues()[i%3]))
	}
	ctx := context.Background()
	// Page 4 of 100 across 3 queues reads min(350, 400) of each: 1,050 > MaxScan.
	if _, _, err := b.store.List(ctx, store.Query{States: []string{"pending"}, Page: 4, PageSize: 100}); !errors.Is(err, store.ErrTooDeep) {
		t.Errorf("deep merged page: %v, want ErrTooDeep", err)
	}
	// Page 3 reads 3 x 300 = 900: within the bound.
	page, _, err := b.store.List(ctx, store.Query{Page: 3, PageSize: 100})
	if err != nil || len(page.Tasks) != 100 || page.Total != 1050 {
		t.Errorf("third page of everything: %d tasks of %d, %v", len(page.Tasks), page.Total, err)
	}
	// Within one queue and state any depth is a window read.
	page, _, err = b.store.List(ctx, store.Query{States: []string{"pending"}, Queues: []string{"high"}, Page: 4, PageSize: 100})
	if err != nil || len(page.Tasks) != 50 || page.Total != 350 {
		t.Errorf("fourth page of one queue: %d tasks of %d, %v; want 50 of 350", len(page.Tasks), page.Total, err)
	}
}

func TestDeleteMatchesAsynq(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ids := b.everyState(t)
	ctx := context.Background()
	for _, state := range []string{"pending", "scheduled", "retry", "archived", "completed"} {
		d, err := b.store.Delete(ctx, "high", ids[state])
		if err != nil || d != store.Deleted {
			t.Errorf("delete %s: %v, %v", state, d, err)
		}
		if _, err := b.insp.GetTaskInfo("high", ids[state]); !errors.Is(err, asynq.ErrTaskNotFound) {
			t.Errorf("%s task still seen by asynq after delete: %v", state, err)
		}
		if _, err := b.store.Delete(ctx, "high", ids[state]); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second delete of %s: %v, want ErrNotFound", state, err)
		}
	}
	qi, err := b.insp.GetQueueInfo("high")
	if err != nil {
		t.Fatal(err)
	}
	if qi.Size != 1 || qi.Active != 1 {
		t.Errorf("after deleting all but the active task asynq counts %+v", qi)
	}
	// The active one is marked and asked to stop, not deleted.
	d, err := b.store.Delete(ctx, "high", ids["active"])
	if err != nil || d != store.CancelRequested {
		t.Fatalf("delete active: %v, %v", d, err)
	}
	if ok, err := b.store.CancelRequested(ctx, "high", ids["active"]); !ok || err != nil {
		t.Errorf("active task not marked cancelled: %v, %v", ok, err)
	}
	if ok, _ := b.store.CancelRequested(ctx, "high", ids["pending"]); ok {
		t.Error("a deleted pending task is marked cancelled")
	}
	if _, err := b.store.Delete(ctx, "urgent", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown queue: %v", err)
	}
}

func TestRegisterQueuesAfterDataLoss(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.store.KeepQueuesRegistered(ctx, 50*time.Millisecond); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	testsupport.Eventually(t, 5*time.Second, "queues registered", func() bool {
		qs, err := b.insp.Queues()
		return err == nil && len(qs) == 3
	})
	if err := b.rc.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	testsupport.Eventually(t, 5*time.Second, "queues registered again", func() bool {
		qs, err := b.insp.Queues()
		return err == nil && len(qs) == 3
	})
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	r := testsupport.StartRedis(t)
	rc := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rc.Close() })
	st := store.New(store.Options{Redis: rc, Queues: tasks.Queues(), Retention: time.Hour})
	r.Stop()
	ctx := context.Background()
	p, _ := tasks.NewCatalogue().Prepare(echo("x", "0s", "high"))
	checks := map[string]error{}
	_, checks["enqueue"] = st.Enqueue(ctx, p)
	_, checks["enqueue once"] = st.EnqueueOnce(ctx, "k", p)
	_, checks["task"] = st.Task(ctx, "high", "x")
	_, _, checks["list"] = st.List(ctx, store.Query{})
	_, checks["queues"] = st.Queues(ctx)
	_, checks["delete"] = st.Delete(ctx, "high", "x")
	checks["ping"] = st.Ping(ctx)
	for op, err := range checks {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with Redis down: %v, want ErrUnavailable", op, err)
		}
	}
}

// TestSearch: 10,000 tasks of mixed types and errors; the search finds by
// type, text and time, reads at most MaxScan tasks per call and goes on
// with the cursor it hands out until it has seen every match.
func TestSearch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	const n = 10_000
	// Completed tasks with results, archived ones with errors, in one queue.
	now := time.Now()
	pipe := b.rc.Pipeline()
	wantBoom := 0
	for i := range n {
		id := fmt.Sprintf("s-%05d", i)
		typ, state, result, errMsg := tasks.TypeEcho, "completed", "prefix___"+id, ""
		if i%10 == 0 {
			typ, state, result, errMsg = tasks.TypeFail, "archived", "", fmt.Sprintf("boom %d", i)
			wantBoom++
		}
		at := now.Add(-time.Duration(n-i) * time.Second)
		msg := encodeTestMessage(id, typ, "default", errMsg, at, state == "completed")
		pipe.HSet(ctx, "asynq:{default}:t:"+id, "msg", msg, "state", state, "result", result)
		pipe.ZAdd(ctx, "asynq:{default}:"+state, redis.Z{Score: float64(at.Unix()), Member: id})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	// Every failure, page after page: each call reads at most MaxScan.
	seen := map[string]bool{}
	cursor, calls := "", 0
	for {
		res, err := b.store.Search(ctx, store.SearchQuery{Type: tasks.TypeFail, Text: "BOOM", Cursor: cursor, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		calls++
		if res.Scanned > store.MaxScan {
			t.Fatalf("one call read %d tasks, over the bound %d", res.Scanned, store.MaxScan)
		}
		for _, tk := range res.Tasks {
			if tk.Type != tasks.TypeFail || !strings.Contains(tk.LastError, "boom") || seen[tk.ID] {
				t.Fatalf("bad or repeated match %+v", tk)
			}
			seen[tk.ID] = true
		}
		if res.Next == "" {
			break
		}
		if calls > 100 {
			t.Fatal("the cursor does not advance")
		}
		cursor = res.Next
	}
	if len(seen) != wantBoom {
		t.Errorf("found %d failures over %d calls, want %d", len(seen), calls, wantBoom)
	}
	// A text in results, and a time window.
	res, err := b.store.Search(ctx, store.SearchQuery{Text: "prefix___s-09999", Limit: 5})
	if err != nil || len(res.Tasks) != 1 || res.Tasks[0].ID != "s-09999" {
		t.Errorf("search by result text: %+v %v", res.Tasks, err)
	}
	res, err = b.store.Search(ctx, store.SearchQuery{Since: now.Add(-30 * time.Second), Until: now, Limit: 100})
	if err != nil || len(res.Tasks) < 29 || len(res.Tasks) > 31 {
		t.Errorf("the last 30 seconds: %d tasks, %v", len(res.Tasks), err)
	}
	// A search that finds nothing stops at the bound and says so.
	res, err = b.store.Search(ctx, store.SearchQuery{Text: "no such text", Limit: 10})
	if err != nil || !res.Truncated || res.Scanned > store.MaxScan || res.Scanned < store.MaxScan/2 || res.Next == "" {
		t.Errorf("a fruitless search: scanned %d, truncated %v, next %q, %v", res.Scanned, res.Truncated, res.Next, err)
	}
	if _, err := b.store.Search(ctx, store.SearchQuery{Text: "x", Cursor: "99.0"}); !errors.Is(err, store.ErrBadCursor) {
		t.Errorf("a forged cursor: %v", err)
	}
}

// encodeTestMessage writes an asynq TaskMessage for tests that fill Redis.
func encodeTestMessage(id, typ, queue, errMsg string, at time.Time, completed bool) []byte {
	var m []byte
	str := func(num protowire.Number, v string) {
		m = protowire.AppendTag(m, num, protowire.BytesType)
		m = protowire.AppendString(m, v)
	}
	num := func(n protowire.Number, v int64) {
		m = protowire.AppendTag(m, n, protowire.VarintType)
		m = protowire.AppendVarint(m, uint64(v))
	}
	str(1, typ)
	str(2, `{}`)
	str(3, id)
	str(4, queue)
	if errMsg != "" {
		str(7, errMsg)
		num(11, at.Unix())
	}
	num(12, 3600)
	if completed {
		num(13, at.Unix())
	}
	return m
}

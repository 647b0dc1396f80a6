package store_test

import (
	"context"
	"errors"
	"regexp"
	"testing"
	"time"

	"taskstack/internal/store"
	"taskstack/internal/tasks"
	"taskstack/internal/testsupport"
)

var claimKey = regexp.MustCompile(`^taskstack:idempotency:[0-9a-f]{64}$`)

// FuzzIdempotencyKey sends any Idempotency-Key value through EnqueueOnce
// on a real Redis: too long is refused; otherwise the first request
// enqueues, the same request again replays the same task, another request
// under that key is refused, and the key reaches Redis only as a hash (no
// user bytes in key names: no hash tags that move it to another Cluster
// slot, nothing that collides with asynq's keys).
func FuzzIdempotencyKey(f *testing.F) {
	for _, k := range []string{"order-42", "", "{high}", "asynq:{default}:pending", "ключ", "\x00\xff", string(make([]byte, 255)), string(make([]byte, 256))} {
		f.Add(k)
	}
	r := testsupport.StartRedis(f)
	rc := r.Client(f)
	st := store.New(store.Options{Redis: rc, Retention: time.Hour, Queues: tasks.Queues()})
	cat := tasks.NewCatalogue()
	prep := func(arg string) tasks.Prepared {
		p, err := cat.Prepare(tasks.Request{Type: tasks.TypeEcho, Payload: []byte(`{"arg":"` + arg + `","sleep":"0s"}`)})
		if err != nil {
			f.Fatal(err)
		}
		return p
	}
	first, other := prep("a"), prep("b")
	f.Fuzz(func(t *testing.T, key string) {
		ctx := context.Background()
		if err := rc.FlushDB(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		e, err := st.EnqueueOnce(ctx, key, first)
		if len(key) > store.MaxIdempotencyKey {
			if !errors.Is(err, store.ErrKeyTooLong) {
				t.Fatalf("key of %d bytes: %v, want ErrKeyTooLong", len(key), err)
			}
			return
		}
		if err != nil || e.Replayed || e.ID == "" {
			t.Fatalf("first request: %+v, %v", e, err)
		}
		again, err := st.EnqueueOnce(ctx, key, first)
		if err != nil || !again.Replayed || again.ID != e.ID {
			t.Fatalf("same request again: %+v, %v; want a replay of %s", again, err, e.ID)
		}
		if _, err := st.EnqueueOnce(ctx, key, other); !errors.Is(err, store.ErrKeyReused) {
			t.Fatalf("another request under the key: %v, want ErrKeyReused", err)
		}
		keys, err := rc.Keys(ctx, "taskstack:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 || !claimKey.MatchString(keys[0]) {
			t.Fatalf("taskstack keys in Redis: %q, want one idempotency claim named by a hash", keys)
		}
	})
}

package worker

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"taskstack/internal/store"
	"taskstack/internal/tasks"
	"taskstack/internal/testsupport"
)

// batchSizes is the real store, with the size of every write noted.
type batchSizes struct {
	*store.Store
	mu    sync.Mutex
	sizes []int
}

func (b *batchSizes) RecordAttempts(ctx context.Context, as []store.Attempt) error {
	b.mu.Lock()
	b.sizes = append(b.sizes, len(as))
	b.mu.Unlock()
	return b.Store.RecordAttempts(ctx, as)
}

// TestAttemptLogBatches: attempts that gathered while the log was busy go
// in writes of attemptBatch at most, and all of them are written.
func TestAttemptLogBatches(t *testing.T) {
	t.Parallel()
	rc := testsupport.StartRedis(t).Client(t)
	st := &batchSizes{Store: store.New(store.Options{Redis: rc, Retention: time.Hour, Queues: tasks.Queues()})}
	l, err := newAttemptLog(st, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	// All queued before the writer starts: the batches are decided.
	n := attemptBatch + 10
	for i := range n {
		l.add(store.Attempt{Queue: "high", TaskID: fmt.Sprintf("t%d", i%3), N: i + 1, StartedAt: time.Now(), FinishedAt: time.Now()})
	}
	go l.run()
	testsupport.Within(t, 30*time.Second, "the attempt log to write and close", l.close)
	if diff := cmp.Diff([]int{attemptBatch, 10}, st.sizes); diff != "" {
		t.Errorf("write sizes (-want +got):\n%s", diff)
	}
}

package worker_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"taskstack/internal/tasks"
	"taskstack/internal/worker"
)

// abandon leaves a pending task the way a worker killed mid-task leaves it:
// what asynq v0.26.0's dequeue script does (internal/rdb/rdb.go,
// dequeueCmd), with a lease that ran out at leaseEnd and nobody renewing it.
func abandon(t *testing.T, rc *redis.Client, queue, id string, leaseEnd time.Time) {
	t.Helper()
	ctx := context.Background()
	p := "asynq:{" + queue + "}:"
	if err := rc.LRem(ctx, p+"pending", 0, id).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := rc.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.LPush(ctx, p+"active", id)
		pipe.HSet(ctx, p+"t:"+id, "state", "active")
		pipe.HDel(ctx, p+"t:"+id, "pending_since")
		pipe.ZAdd(ctx, p+"lease", redis.Z{Score: float64(leaseEnd.Unix()), Member: id})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLeaseExpiredTaskRecovered: a task whose lease expired longer ago
// than LeaseExpiryMargin is put back for a retry with
// LeaseExpiredRetryDelay, not asynq's back-off; one whose lease expired more
// recently (inside the clock-skew margin) is left alone. The forwarder is
// slowed down so the retry stays where it can be read.
func TestLeaseExpiredTaskRecovered(t *testing.T) {
	t.Parallel()
	b := setup(t, tasks.NewCatalogue())
	payload := json.RawMessage(`{"arg":"x","sleep":"0s"}`)
	old := b.enqueue(t, tasks.Request{Type: tasks.TypeEcho, Payload: payload})
	recent := b.enqueue(t, tasks.Request{Type: tasks.TypeEcho, Payload: payload})
	now := time.Now()
	abandon(t, b.rc, "default", old, now.Add(-time.Minute))
	abandon(t, b.rc, "default", recent, now.Add(-10*time.Second))

	b.start(t, worker.Options{
		RecoveryInterval:       time.Second,
		LeaseExpiryMargin:      30 * time.Second,
		LeaseExpiredRetryDelay: 0,
		ForwardInterval:        time.Hour,
	})
	ti := b.waitState(t, "default", old, asynq.TaskStateRetry)
	if ti.Retried != 1 || ti.LastErr != asynq.ErrLeaseExpired.Error() {
		t.Errorf("recovered task: retried %d, last error %q; want 1, %q", ti.Retried, ti.LastErr, asynq.ErrLeaseExpired)
	}
	if d := ti.NextProcessAt.Sub(ti.LastFailedAt); d > time.Second {
		t.Errorf("recovered task is due %s after its recovery, want at once (LeaseExpiredRetryDelay 0)", d)
	}
	// The pass that took the old task also saw the recent one.
	if ti, err := b.insp.GetTaskInfo("default", recent); err != nil || ti.State != asynq.TaskStateActive {
		t.Errorf("task whose lease expired inside the margin: %v, %v; want it left active", ti, err)
	}
}

// TestLeaseExpiredTaskRunsAgain: with the settings the worker binary uses,
// an abandoned task runs to completion on a live worker.
func TestLeaseExpiredTaskRunsAgain(t *testing.T) {
	t.Parallel()
	b := setup(t, tasks.NewCatalogue())
	id := b.enqueue(t, tasks.Request{Type: tasks.TypeEcho, Payload: json.RawMessage(`{"arg":"again","sleep":"0s"}`)})
	abandon(t, b.rc, "default", id, time.Now().Add(-time.Minute))
	b.start(t, worker.Options{RecoveryInterval: time.Second, LeaseExpiryMargin: 5 * time.Second, ForwardInterval: time.Second})
	ti := b.waitState(t, "default", id, asynq.TaskStateCompleted)
	if string(ti.Result) != "prefix___again" || ti.Retried != 1 {
		t.Errorf("result %q after %d retries, want prefix___again after 1", ti.Result, ti.Retried)
	}
}

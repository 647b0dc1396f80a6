package monitor_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
)

// abandon leaves a pending task the way a worker killed mid-task leaves it:
// what asynq v0.26.0's dequeue script does (internal/rdb/rdb.go,
// dequeueCmd), with a lease that ran out at leaseEnd.
func (b *bundle) abandon(t *testing.T, queue, id string, leaseEnd time.Time) {
	t.Helper()
	ctx := context.Background()
	p := "asynq:{" + queue + "}:"
	_, err := b.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.LRem(ctx, p+"pending", 0, id)
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

// TestMetricsExportOrphanedTasks: tasks left active by a dead worker are
// counted per queue with the age of the oldest expired lease; when Redis
// does not answer the series are absent, as asynq's own are.
func TestMetricsExportOrphanedTasks(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for _, id := range b.enqueue(t, "default", 2) {
		b.abandon(t, "default", id, time.Now().Add(-time.Minute))
	}
	live := b.enqueue(t, "high", 1)[0]
	b.abandon(t, "high", live, time.Now().Add(30*time.Second)) // a running task

	gauges := func() (map[string]float64, map[string]float64) {
		t.Helper()
		code, body := b.do(t, http.MethodGet, "/metrics", "-", "")
		if code != http.StatusOK {
			t.Fatalf("/metrics = %d", code)
		}
		fams := parseMetrics(t, body)
		read := func(name string) map[string]float64 {
			out := map[string]float64{}
			for _, m := range fams[name].GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "queue" {
						out[l.GetValue()] = m.GetGauge().GetValue()
					}
				}
			}
			return out
		}
		return read("taskstack_tasks_orphaned"), read("taskstack_tasks_orphaned_oldest_seconds")
	}
	count, oldest := gauges()
	if diff := cmp.Diff(map[string]float64{"high": 0, "default": 2, "low": 0}, count); diff != "" {
		t.Errorf("taskstack_tasks_orphaned (-want +got):\n%s", diff)
	}
	if o := oldest["default"]; o < 59 || o > 70 {
		t.Errorf("taskstack_tasks_orphaned_oldest_seconds{queue=default} = %v, want about 60", o)
	}

	b.redis.Stop()
	if count, _ := gauges(); len(count) != 0 {
		t.Errorf("with Redis down taskstack_tasks_orphaned = %v, want no series", count)
	}
}

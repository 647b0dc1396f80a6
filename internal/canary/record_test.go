package canary_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"taskstack/internal/canary"
	"taskstack/internal/testsupport"
)

// TestRecorderAndCollector: the worker records a completion (latency and
// time), and the monitor's collector exports the latest success per queue
// from Redis; an older completion reported later does not move it back.
func TestRecorderAndCollector(t *testing.T) {
	t.Parallel()
	r := testsupport.StartRedis(t)
	st := newStore(t, r)
	wreg := prometheus.NewRegistry()
	rec, err := canary.NewRecorder(st, wreg, slog.New(slog.DiscardHandler), []string{"high", "default", "low"})
	if err != nil {
		t.Fatal(err)
	}
	enq := time.Unix(1_800_000_000, 0)
	rec.CanarySucceeded(context.Background(), "high", enq, enq.Add(250*time.Millisecond))
	rec.CanarySucceeded(context.Background(), "high", enq.Add(-time.Minute), enq.Add(-time.Minute+time.Second))
	rec.CanarySucceeded(context.Background(), "low", enq, enq.Add(2*time.Second))

	for _, tt := range []struct {
		queue string
		le    float64
		want  uint64
	}{
		{"high", 0.25, 1}, {"high", 0.1, 0}, {"high", 1, 2}, {"low", 1, 0}, {"low", 2.5, 1}, {"default", 300, 0},
	} {
		if got := bucket(t, wreg, tt.queue, tt.le); got != tt.want {
			t.Errorf("latency{queue=%s,le=%v} = %d, want %d", tt.queue, tt.le, got, tt.want)
		}
	}

	mreg := prometheus.NewRegistry()
	mreg.MustRegister(canary.NewCollector(st, slog.New(slog.DiscardHandler)))
	wantLast := `
# HELP taskstack_canary_last_success_timestamp_seconds When a canary task last completed on a queue (any worker), in Unix seconds; absent for a queue that never had one.
# TYPE taskstack_canary_last_success_timestamp_seconds gauge
taskstack_canary_last_success_timestamp_seconds{queue="high"} 1.80000000025e+09
taskstack_canary_last_success_timestamp_seconds{queue="low"} 1.800000002e+09
`
	if err := testutil.GatherAndCompare(mreg, strings.NewReader(wantLast)); err != nil {
		t.Error(err)
	}

	// Redis gone: the gauge is left out of the scrape, which still works.
	r.Stop()
	if n := testutil.CollectAndCount(mreg); n != 0 {
		t.Errorf("%d series with Redis down, want 0", n)
	}
}

// bucket returns the cumulative count of one latency bucket.
func bucket(t *testing.T, reg *prometheus.Registry, queue string, le float64) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "taskstack_canary_latency_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() != queue {
				continue
			}
			for _, b := range m.GetHistogram().GetBucket() {
				if b.GetUpperBound() == le {
					return b.GetCumulativeCount()
				}
			}
		}
	}
	t.Fatalf("no latency bucket queue=%s le=%v", queue, le)
	return 0
}

package monitor_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"taskstack/internal/store"
	"taskstack/internal/tasks"
	"taskstack/internal/testsupport"
	"taskstack/internal/worker"
)

// TestLiveWorkload runs a real worker on a steady stream of demo:echo tasks
// (completed ones retained, a short retention so they also expire while the
// test runs) and demo:fail tasks (archived at once), and checks that the
// dashboard's queue APIs and /metrics answer correctly the whole time.
// asynqmon v0.7.2 with asynq v0.26 fails here without our workarounds.
func TestLiveWorkload(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)

	w, err := worker.New(worker.Options{
		Queues: map[string]int{"high": 6, "default": 3, "low": 1}, Concurrency: 10,
		TaskCheckInterval: 10 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
		Redis: b.redis.Client(t), Catalogue: tasks.NewCatalogue(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)

	// Short retention: completed tasks' hashes expire during the run while
	// their IDs wait in the completed set for asynq's janitor.
	st := store.New(store.Options{Redis: b.rdb, Retention: time.Second, Queues: tasks.Queues()})
	cat := tasks.NewCatalogue()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		queues := tasks.Queues()
		for i := 0; ctx.Err() == nil; i++ {
			req := tasks.Request{Type: tasks.TypeEcho, Payload: []byte(`{"arg":"` + fmt.Sprint(i) + `","sleep":"0s"}`), Queue: queues[i%len(queues)]}
			if i%7 == 0 {
				req = tasks.Request{Type: tasks.TypeFail, Queue: queues[i%len(queues)]}
			}
			p, err := cat.Prepare(req)
			if err == nil {
				_, err = st.Enqueue(ctx, p)
			}
			if err != nil && ctx.Err() == nil {
				t.Errorf("enqueue: %v", err)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	})
	t.Cleanup(func() { cancel(); testsupport.Within(t, 10*time.Second, "the workload to stop", wg.Wait) })

	deadline := time.Now().Add(7 * time.Second)
	var polls int
	for time.Now().Before(deadline) {
		polls++
		code, qs, body := b.queues(t)
		if code != http.StatusOK {
			t.Fatalf("poll %d: GET %s/api/queues = %d: %s", polls, b.root, code, body)
		}
		for _, q := range tasks.Queues() {
			if _, ok := qs[q]; !ok && polls > 5 {
				t.Fatalf("poll %d: queue %s missing from %s", polls, q, body)
			}
			if code, body := b.get(t, b.root+"/api/queues/"+q); code != http.StatusOK && polls > 5 {
				t.Fatalf("poll %d: GET /api/queues/%s = %d: %s", polls, q, code, body)
			}
		}
		code, metrics := b.do(t, http.MethodGet, "/metrics", "-", "")
		if code != http.StatusOK {
			t.Fatalf("poll %d: /metrics = %d", polls, code)
		}
		fams := parseMetrics(t, metrics)
		if polls > 5 && len(fams["asynq_queue_size"].GetMetric()) != len(tasks.Queues()) {
			t.Fatalf("poll %d: /metrics has %d asynq_queue_size series, want one per queue", polls, len(fams["asynq_queue_size"].GetMetric()))
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The run really had retained completed and archived tasks.
	_, qs, body := b.queues(t)
	var completed, archived, processed int
	for _, q := range qs {
		completed += q.Completed
		archived += q.Archived
		processed += q.Processed
	}
	if completed == 0 || archived == 0 || processed < 100 {
		t.Errorf("workload too small to mean anything: completed %d archived %d processed %d\n%s", completed, archived, processed, body)
	}
	t.Logf("%d polls; processed %d, completed retained %d, archived %d", polls, processed, completed, archived)
}

func parseMetrics(t *testing.T, text []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(text)))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

//go:build chaos

package faults

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"taskstack/internal/testsupport"
)

// TestWorkerKill9AsynqDefaults is TestWorkerKill9 with asynq's own
// recoverer timing (every minute, leases expired 30 s ago): the figure to
// compare with.
func TestWorkerKill9AsynqDefaults(t *testing.T) {
	t.Parallel()
	workerKill9(t, "worker-kill9/asynq-recoverer-defaults", map[string]string{
		"WORKER_RECOVERY_INTERVAL": "1m", "WORKER_LEASE_EXPIRY_MARGIN": "30s",
	})
}

// TestRedisLongOutage: Redis is away for 40 s, longer than a lease (30 s),
// while 10 tasks of 20 s run. Each worker cancels the handlers whose lease
// it could not renew; once Redis is back the recoverer retries them, so
// every task completes, and the interrupted ones run again.
func TestRedisLongOutage(t *testing.T) {
	t.Parallel()
	r := testsupport.StartRedis(t, testsupport.RedisArgs("--appendonly", "yes", "--appendfsync", "always"))
	redisEnv := map[string]string{"REDIS_URL": r.URL}
	app := startApp(t, redisEnv)
	w := startWorker(t, redisEnv)
	l := &load{appURL: app.url, prefix: "long-outage", n: 10, clients: 10, pace: time.Millisecond, sleep: "20s", queue: "default"}
	subs := l.run(context.Background())
	testsupport.Eventually(t, 30*time.Second, "10 tasks running", func() bool {
		return len(activeTasks(t, app.url, "default")) == l.n
	})
	down := time.Now()
	r.Shutdown()
	time.Sleep(40 * time.Second)
	r.Restart(t)
	up := time.Now()
	o := settle(t, app.url, subs, []*proc{w}, 3*time.Minute)
	o.check(t, false)
	retried := 0
	for _, v := range o.views {
		if v.Retried > 0 {
			retried++
		}
	}
	figure(t, "redis-long-outage", "tasks", o.accepted, "lost", len(o.lost), "rerun_completed", len(o.rerun),
		"retried", retried, "outage", up.Sub(down), "all_done_after_restart", o.doneAt.Sub(up))
}

// soak settings.
const (
	soakClients  = 50
	soakDuration = 60 * time.Second
	soakWarmUp   = 20 * time.Second
	// soakRestartAt is when Redis is restarted, from the start of the load.
	soakRestartAt = 30 * time.Second
	// soakGrace is how long after Redis is back a 503 still counts as part
	// of the outage (connection pools reconnect).
	soakGrace = 5 * time.Second
	// heapSlack is how much the heap may grow from before to after the load.
	heapSlack = 0.10
)

// TestSoak: 50 clients for 60 s, a mix of valid, invalid, list and delete
// calls, with one Redis restart (SIGTERM, 3 s down, AOF everysec) in the
// middle. No 5xx but 503, and 503 only during the outage; every
// acknowledged task that was not deleted completes; afterwards app and
// worker are back within 10% of their heap before the load and run as many
// goroutines as before. The time series is printed ("SERIES" lines).
//
// Heap: go_gc_heap_live_bytes, the heap the last garbage collection found
// live, read from /metrics every 100 ms while the process is idle; the
// smallest of three collections in a row. Measured after a 10 s warm-up at
// the same concurrency (so connection pools already have their size), and
// again once the load is over and every task has completed. The warm-up
// (20 s of the same mix with its own Redis restart, then a burst of 200
// concurrent calls) brings connection pools to their size first.
func TestSoak(t *testing.T) {
	r := testsupport.StartRedis(t, testsupport.RedisArgs("--appendonly", "yes", "--appendfsync", "everysec"))
	redisEnv := map[string]string{"REDIS_URL": r.URL}
	app := startApp(t, redisEnv)
	w := startWorker(t, env(redisEnv, map[string]string{"WORKER_CONCURRENCY": "20"}))

	// Warm-up: the same mix with its own Redis restart, then a burst of 200
	// concurrent calls, so that every bounded pool (go-redis keeps up to 20
	// connections per pool here, 64-256 KiB of buffers each) has reached its
	// size before the baseline: what the heap check must catch is growth
	// with the work done, not pools filling up.
	warm := &soak{appURL: app.url}
	var warmDown time.Time
	warm.run(t, soakWarmUp, func(elapsed time.Duration) {
		if elapsed >= soakWarmUp/2 && warmDown.IsZero() {
			warmDown = time.Now()
			r.Shutdown()
			time.Sleep(time.Second)
			r.Restart(t)
		}
	})
	burst(app.url, 200)
	settle(t, app.url, warm.kept(), []*proc{w}, 2*time.Minute)
	appBefore, workerBefore := idleState(t, app.url), idleState(t, w.url)

	s := &soak{appURL: app.url}
	series := startSeries(app.url, w.url)
	var down, up time.Time
	s.run(t, soakDuration, func(elapsed time.Duration) {
		if elapsed >= soakRestartAt && down.IsZero() {
			down = time.Now()
			r.Shutdown()
			time.Sleep(3 * time.Second)
			r.Restart(t)
			up = time.Now()
		}
	})
	series.stop()

	// No 5xx but 503, and 503 only during the outage.
	after503 := 0 // 503s answered after Redis was back
	for _, c := range s.calls {
		switch {
		case c.status == http.StatusServiceUnavailable:
			if c.at.Before(down.Add(-time.Second)) || c.at.After(up.Add(soakGrace)) {
				t.Errorf("%s at %s: 503 outside the outage (%s to %s)", c.op, c.at.Format(time.StampMilli), down.Format(time.StampMilli), up.Format(time.StampMilli))
			}
			if c.at.Add(c.latency).After(up) {
				after503++
			}
		case c.status >= 500 || c.status == 0:
			t.Errorf("%s: HTTP %d %v", c.op, c.status, c.err)
		}
	}
	o := settle(t, app.url, s.kept(), []*proc{w}, 3*time.Minute)
	o.check(t, false)

	appAfter, workerAfter := idleState(t, app.url), idleState(t, w.url)
	for _, p := range []struct {
		name          string
		before, after idle
	}{{"app", appBefore, appAfter}, {"worker", workerBefore, workerAfter}} {
		if float64(p.after.heap) > float64(p.before.heap)*(1+heapSlack) {
			t.Errorf("%s heap %s after the load, %s before: more than %.0f%% growth", p.name, mib(p.after.heap), mib(p.before.heap), heapSlack*100)
		}
		if p.after.goroutines > p.before.goroutines+2 {
			t.Errorf("%s runs %d goroutines after the load, %d before", p.name, p.after.goroutines, p.before.goroutines)
		}
	}
	series.print(t)
	counts := map[string]int{}
	for _, c := range s.calls {
		counts[fmt.Sprintf("%s_%d", c.op, c.status)]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var mix []string
	for _, k := range keys {
		mix = append(mix, fmt.Sprintf("%s:%d", k, counts[k]))
	}
	figure(t, "soak", "clients", soakClients, "duration", soakDuration, "calls", len(s.calls), "tasks", o.accepted,
		"lost", len(o.lost), "rerun_completed", len(o.rerun), "outage", up.Sub(down), "status_503_after_restart", after503,
		"app_heap_before", mib(appBefore.heap), "app_heap_after", mib(appAfter.heap),
		"worker_heap_before", mib(workerBefore.heap), "worker_heap_after", mib(workerAfter.heap),
		"app_goroutines", fmt.Sprintf("%d->%d", appBefore.goroutines, appAfter.goroutines),
		"worker_goroutines", fmt.Sprintf("%d->%d", workerBefore.goroutines, workerAfter.goroutines),
		"mix", strings.Join(mix, ","))
}

func mib(b float64) string { return fmt.Sprintf("%.1fMiB", b/(1<<20)) }

// call is one request of the soak.
type call struct {
	op      string // submit, invalid, list, delete
	at      time.Time
	latency time.Duration
	status  int
	err     error
}

// soak runs the request mix.
type soak struct {
	appURL  string
	mu      sync.Mutex
	calls   []call
	subs    []submission
	deleted map[string]bool
}

// kept are the acknowledged submissions that were not deleted.
func (s *soak) kept() []submission {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []submission
	for _, sub := range s.subs {
		if sub.accepted() && !s.deleted[sub.id] {
			out = append(out, sub)
		}
	}
	return out
}

var invalidBodies = []string{
	`{"type":"demo:echo","payload":{"arg":"x","sleep":"forever"}}`,
	`{"type":"demo:nope"}`,
	`{"type":"demo:echo","queue":"urgent"}`,
	`{"type":"demo:echo","payload":{"arg":"x"},"color":"red"}`,
	`{"type":`,
	`[]`,
}

var listPaths = []string{
	"/api/v1/tasks", "/api/v1/tasks?state=completed&queue=default&page=2&page_size=50",
	"/api/v1/tasks?state=pending", "/api/v1/queues", "/finished_tasks", "/api/v1/tasks?page=0",
}

// run drives soakClients clients for d; tick, when set, is called by one
// client about every 100 ms with the time elapsed.
func (s *soak) run(t *testing.T, d time.Duration, tick func(time.Duration)) {
	t.Helper()
	s.deleted = map[string]bool{}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for c := range soakClients {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(c), uint64(start.UnixNano())))
			for n := 0; ctx.Err() == nil; n++ {
				if c == 0 && tick != nil {
					tick(time.Since(start))
				}
				s.one(rnd, fmt.Sprintf("soak-%d-%d-%d", start.UnixNano(), c, n))
				time.Sleep(time.Duration(rnd.IntN(100)) * time.Millisecond)
			}
		})
	}
	wg.Wait()
}

func (s *soak) one(rnd *rand.Rand, arg string) {
	ctx := context.Background()
	c := call{at: time.Now()}
	p := rnd.IntN(100)
	switch {
	case p < 50:
		c.op = "submit"
		sub := post(ctx, s.appURL, arg, echoBody(arg, fmt.Sprintf("%dms", rnd.IntN(100)), []string{"high", "default", "low"}[rnd.IntN(3)]), nil)
		c.status, c.err = sub.status, sub.err
		s.mu.Lock()
		s.subs = append(s.subs, sub)
		s.mu.Unlock()
	case p < 65:
		c.op = "invalid"
		sub := post(ctx, s.appURL, arg, invalidBodies[rnd.IntN(len(invalidBodies))], nil)
		c.status, c.err = sub.status, sub.err
	case p < 90:
		c.op = "list"
		resp, err := client.Get(s.appURL + listPaths[rnd.IntN(len(listPaths))])
		if err == nil {
			c.status = resp.StatusCode
			resp.Body.Close()
		}
		c.err = err
	default:
		c.op = "delete"
		s.mu.Lock()
		var victim submission
		if len(s.subs) > 0 {
			victim = s.subs[rnd.IntN(len(s.subs))]
		}
		s.mu.Unlock()
		if !victim.accepted() {
			return
		}
		req, _ := http.NewRequest(http.MethodDelete, s.appURL+"/api/v1/queues/"+victim.queue+"/tasks/"+victim.id, nil)
		resp, err := client.Do(req)
		if err == nil {
			c.status = resp.StatusCode
			resp.Body.Close()
			if c.status == http.StatusNoContent || c.status == http.StatusAccepted {
				s.mu.Lock()
				s.deleted[victim.id] = true
				s.mu.Unlock()
			}
		}
		c.err = err
	}
	c.latency = time.Since(c.at)
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.mu.Unlock()
}

// burst sends n list calls and n submissions at once.
func burst(appURL string, n int) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if resp, err := client.Get(appURL + "/api/v1/tasks"); err == nil {
				resp.Body.Close()
			}
			arg := fmt.Sprintf("burst-%d", i)
			post(context.Background(), appURL, arg, echoBody(arg, "0s", "default"), nil)
		})
	}
	wg.Wait()
}

// idle is a process's live heap and goroutines when it has nothing to do.
type idle struct {
	heap       float64
	goroutines int
}

// idleState measures a process as TestSoak describes: the smallest live
// heap of three collections while it is idle, and its goroutines then.
func idleState(t *testing.T, baseURL string) idle {
	t.Helper()
	var (
		lastGC = -1.0
		gcs    = 0
		out    = idle{heap: -1}
	)
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		m, err := scrape(baseURL)
		if err == nil {
			gc := m["go_gc_duration_seconds_count"]
			if lastGC >= 0 && gc > lastGC { // a collection since the last sample
				gcs++
				if live := m["go_gc_heap_live_bytes"]; out.heap < 0 || live < out.heap {
					out.heap = live
				}
				out.goroutines = int(m["go_goroutines"])
				if gcs >= 3 {
					return out
				}
			}
			lastGC = gc
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: fewer than three garbage collections in 3 minutes", baseURL)
	return out
}

// scrape reads the unlabelled (or first) value of each series of /metrics.
func scrape(baseURL string) (map[string]float64, error) {
	resp, err := client.Get(baseURL + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return nil, err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(&buf)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			switch {
			case m.GetGauge() != nil:
				out[name] += m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[name] += m.GetCounter().GetValue()
			case m.GetSummary() != nil:
				out[name+"_count"] += float64(m.GetSummary().GetSampleCount())
			case m.GetHistogram() != nil:
				out[name+"_count"] += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out, nil
}

// series samples app and worker once a second.
type series struct {
	appURL, workerURL string
	cancel            context.CancelFunc
	done              chan struct{}
	rows              []string
}

func startSeries(appURL, workerURL string) *series {
	ctx, cancel := context.WithCancel(context.Background())
	s := &series{appURL: appURL, workerURL: workerURL, cancel: cancel, done: make(chan struct{})}
	start := time.Now()
	go func() {
		defer close(s.done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var prevReq, prevDone float64
		if a, err := scrape(appURL); err == nil {
			prevReq = a["taskstack_http_requests_total"]
		}
		if w, err := scrape(workerURL); err == nil {
			prevDone = w["taskstack_tasks_processed_total"]
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			a, errA := scrape(appURL)
			w, errW := scrape(workerURL)
			if errA != nil || errW != nil {
				s.rows = append(s.rows, fmt.Sprintf("%5.0f\tscrape failed: %v %v", time.Since(start).Seconds(), errA, errW))
				continue
			}
			req, done := a["taskstack_http_requests_total"], w["taskstack_tasks_processed_total"]
			s.rows = append(s.rows, fmt.Sprintf("%5.0f\t%6.0f\t%6.0f\t%7s\t%7s\t%5.0f\t%5.0f",
				time.Since(start).Seconds(), req-prevReq, done-prevDone,
				mib(a["go_memstats_heap_alloc_bytes"]), mib(w["go_memstats_heap_alloc_bytes"]),
				a["go_goroutines"], w["go_goroutines"]))
			prevReq, prevDone = req, done
		}
	}()
	return s
}

func (s *series) stop() { s.cancel(); <-s.done }

func (s *series) print(t *testing.T) {
	t.Helper()
	t.Logf("SERIES %5s\t%6s\t%6s\t%7s\t%7s\t%5s\t%5s", "t(s)", "req/s", "done/s", "appheap", "wrkheap", "appgr", "wrkgr")
	for _, r := range s.rows {
		t.Logf("SERIES %s", r)
	}
}

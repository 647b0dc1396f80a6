package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The sustained phase is a user's real workload: clients submit through
// the HTTP API while the worker processes, for -sustain (30 s) after a 2 s
// lead, at the highest rate the stack sustains: -sustain-conns clients
// post demo:echo round-robin on the three queues, paced by a rate that
// grows by 10% every 200 ms while fewer than 500 tasks are pending and
// shrinks by 20% above 2,000 (so the backlog stays bounded by
// construction and the rate settles where the worker keeps up, or where
// the API answers no faster). The worker runs with its defaults
// (taskstack: WORKER_SERVERS=auto; raw: one loop, what a user of asynq
// writes). Measured over the window: submitted and completed tasks/s
// (asynq's processed counters), the pending backlog's growth, CPU of app,
// worker and redis-server, and submit→complete of probe tasks the harness
// submits through the same API 20 times a second and watches in Redis
// every 5 ms.

type sustainedResult struct {
	submit, tps, growth float64 // tasks/s
	pendingEnd          float64 // tasks pending at the end of the window
	p50, p99            float64 // ms, submit→complete of the probes
	probes, unfinished  int
	cpuApp, cpuWorker   float64 // % of a core
	cpuRedis            float64
}

func (b *bench) sustained(ctx context.Context, kind string, dur time.Duration, conns int) (r sustainedResult, err error) {
	if err := b.redis.Flush(ctx); err != nil {
		return r, err
	}
	lp := loops{servers: 1}
	if kind == kindTS {
		lp = loops{} // the default, auto
	}
	w, err := b.startWorker(kind, threeQueues, lp, b.o.checkInterval)
	if err != nil {
		return r, err
	}
	defer w.Stop()
	app, base, err := b.startApp(kind)
	if err != nil {
		return r, err
	}
	defer app.Stop()
	const lead = 2 * time.Second
	load := newPacedLoad(base+"/api/v1/tasks", conns)
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	loadDone := make(chan error, 1)
	go func() { loadDone <- load.run(loadCtx, b) }()
	select {
	case <-time.After(lead):
	case err := <-loadDone:
		return r, fmt.Errorf("load ended early: %v", err)
	}

	type sample struct {
		processed, pending int64
		app, worker, redis float64
	}
	read := func() (sample, error) {
		var s sample
		pipe := b.redis.Client.Pipeline()
		var pc, dc []interface{ Val() int64 }
		for _, q := range threeQueues {
			pc = append(pc, pipe.LLen(ctx, "asynq:{"+q+"}:pending"))
			dc = append(dc, pipe.IncrBy(ctx, "asynq:{"+q+"}:processed", 0))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return s, err
		}
		for i := range pc {
			s.pending += pc[i].Val()
			s.processed += dc[i].Val()
		}
		s.app, s.worker = app.CPUSeconds(), w.CPUSeconds()
		var err error
		s.redis, err = b.redis.CPUSeconds(ctx)
		return s, err
	}
	s0, err := read()
	if err != nil {
		return r, err
	}
	sub0 := load.sent.Load()
	t0 := time.Now()
	// The window ends with the probes' submissions; their completions may
	// be watched a little longer.
	var lat []int64
	probeDone := make(chan error, 1)
	go func() {
		var err error
		lat, r.unfinished, err = b.probe(ctx, base, dur)
		probeDone <- err
	}()
	select {
	case <-ctx.Done():
		return r, ctx.Err()
	case <-time.After(dur):
	}
	s1, err := read()
	if err != nil {
		return r, err
	}
	el := time.Since(t0).Seconds()
	sub1 := load.sent.Load()
	stopLoad()
	if err := <-loadDone; err != nil {
		return r, err
	}
	if err := <-probeDone; err != nil {
		return r, err
	}
	r.submit = float64(sub1-sub0) / el
	r.tps = float64(s1.processed-s0.processed) / el
	r.growth = float64(s1.pending-s0.pending) / el
	r.pendingEnd = float64(s1.pending)
	r.cpuApp = 100 * (s1.app - s0.app) / el
	r.cpuWorker = 100 * (s1.worker - s0.worker) / el
	r.cpuRedis = 100 * (s1.redis - s0.redis) / el
	r.probes = len(lat)
	if len(lat) > 0 {
		slices.Sort(lat)
		r.p50 = float64(percentile(lat, 0.50)) / 1e6
		r.p99 = float64(percentile(lat, 0.99)) / 1e6
	}
	return r, nil
}

// probe submits a task through base's API 20 times a second for dur and
// returns each one's submit→complete in nanoseconds (the task's state seen
// "completed" in Redis, polled every 5 ms), and how many were not done 10 s
// after the end (a backlog that grew).
func (b *bench) probe(ctx context.Context, base string, dur time.Duration) ([]int64, int, error) {
	type probe struct {
		key  string
		sent time.Time
	}
	var (
		mu       sync.Mutex
		waiting  []probe
		lat      []int64
		errOnce  error
		sendDone = make(chan struct{})
	)
	client := &http.Client{Timeout: 10 * time.Second}
	go func() {
		defer close(sendDone)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		end := time.Now().Add(dur)
		for i := 0; time.Now().Before(end); i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			q := threeQueues[i%3]
			body := fmt.Sprintf(`{"type":"demo:echo","payload":{"arg":"probe","sleep":"0s"},"queue":%q}`, q)
			sent := time.Now()
			resp, err := client.Post(base+"/api/v1/tasks", "application/json", bytes.NewBufferString(body))
			if err != nil {
				mu.Lock()
				errOnce = err
				mu.Unlock()
				return
			}
			var v struct{ ID string }
			err = json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
			if err != nil || resp.StatusCode/100 != 2 || v.ID == "" {
				mu.Lock()
				errOnce = fmt.Errorf("probe submit: status %d, %v", resp.StatusCode, err)
				mu.Unlock()
				return
			}
			mu.Lock()
			waiting = append(waiting, probe{key: "asynq:{" + q + "}:t:" + v.ID, sent: sent})
			mu.Unlock()
		}
	}()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var deadline <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-sendDone:
			sendDone = nil
			deadline = time.After(10 * time.Second)
		case <-deadline:
			mu.Lock()
			defer mu.Unlock()
			return lat, len(waiting), nil
		case now := <-tick.C:
			mu.Lock()
			ws := slices.Clone(waiting)
			err := errOnce
			mu.Unlock()
			if err != nil {
				return nil, 0, err
			}
			if len(ws) == 0 {
				if sendDone == nil {
					return lat, 0, nil
				}
				continue
			}
			pipe := b.redis.Client.Pipeline()
			cmds := make([]interface{ Val() string }, len(ws))
			for i, p := range ws {
				cmds[i] = pipe.HGet(ctx, p.key, "state")
			}
			_, _ = pipe.Exec(ctx) // a key not there yet is redis.Nil
			done := map[string]bool{}
			for i, p := range ws {
				if cmds[i].Val() == "completed" {
					lat = append(lat, now.Sub(p.sent).Nanoseconds())
					done[p.key] = true
				}
			}
			mu.Lock()
			waiting = slices.DeleteFunc(waiting, func(p probe) bool { return done[p.key] })
			mu.Unlock()
		}
	}
}

// pacedLoad posts demo:echo tasks from conns goroutines at a rate it adapts
// to the pending backlog.
type pacedLoad struct {
	url    string
	conns  int
	client *http.Client
	sent   atomic.Int64 // accepted submissions
}

func newPacedLoad(url string, conns int) *pacedLoad {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = conns
	return &pacedLoad{url: url, conns: conns, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

func (l *pacedLoad) run(ctx context.Context, b *bench) error {
	tokens := make(chan struct{}, 256)
	errc := make(chan error, l.conns+1)
	var wg sync.WaitGroup
	for c := range l.conns {
		wg.Go(func() {
			bodies := make([][]byte, len(threeQueues))
			for i, q := range threeQueues {
				bodies[i] = []byte(`{"type":"demo:echo","payload":{"arg":"x","sleep":"0s"},"queue":"` + q + `"}`)
			}
			for i := c; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tokens:
				}
				resp, err := l.client.Post(l.url, "application/json", bytes.NewReader(bodies[i%len(bodies)]))
				if err != nil {
					if ctx.Err() == nil {
						errc <- err
					}
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					errc <- fmt.Errorf("submit: status %d", resp.StatusCode)
					return
				}
				l.sent.Add(1)
			}
		})
	}
	// The pacer: tokens at rate per second, adjusted every 200 ms on the
	// pending backlog.
	rate, credit := 1000.0, 0.0
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	last, adjusted := time.Now(), time.Now()
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		case now := <-tick.C:
			credit = min(credit+rate*now.Sub(last).Seconds(), 256)
			last = now
			for ; credit >= 1; credit-- {
				select {
				case tokens <- struct{}{}:
				default:
					credit = 0 // the clients are all busy: the API is the limit
				}
			}
			if now.Sub(adjusted) < 200*time.Millisecond {
				continue
			}
			adjusted = now
			pending, _, err := b.backlog(ctx, threeQueues)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			switch {
			case pending < 500:
				rate *= 1.1
			case pending > 2000:
				rate = max(100, rate*0.8)
			}
		}
	}
}

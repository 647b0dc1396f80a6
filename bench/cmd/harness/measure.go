package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"taskstack/bench/internal/benchproc"
	"taskstack/internal/store"
	"taskstack/internal/tasks"
)

const (
	kindTS  = "taskstack"
	kindRaw = "raw"
)

// queue layouts of the processing phase.
var (
	threeQueues = []string{tasks.QueueHigh, tasks.QueueDefault, tasks.QueueLow}
	oneQueue    = []string{tasks.QueueDefault}
)

func weights(queues []string) string {
	if len(queues) == 1 {
		return queues[0] + ":1"
	}
	return "high:6,default:3,low:1"
}

const echoPayload = `{"arg":"x","sleep":"0s"}`

// bench is one redis-server plus what every phase shares.
type bench struct {
	o       options
	bins    map[string]string
	dir     string
	redis   *benchproc.Redis
	sink    *sink
	cat     *tasks.Catalogue
	store   *store.Store
	raw     *asynq.Client
	starts  *producerStarts
	logSeq  atomic.Int64
	rawOpts []asynq.Option
}

func (b *bench) logPath(name string) string {
	return filepath.Join(b.dir, fmt.Sprintf("%03d-%s.log", b.logSeq.Add(1), name))
}

func (b *bench) telemetryEnv(env map[string]string) map[string]string {
	env["APP_ENV"] = "dev"
	env["LOG_FORMAT"] = "json"
	env["LOG_LEVEL"] = "info"
	env["REDIS_URL"] = "redis://" + b.redis.Addr + "/0"
	env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://" + b.sink.addr
	env["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
	env["OTEL_TRACES_SAMPLER_ARG"] = "0.1"
	// The HTTP phase piles up to ~400k tasks on one queue with no worker:
	// far above the default cap of 100k pending, which stays checked.
	env["QUEUE_MAX_PENDING"] = "100000000"
	return env
}

// startWorker runs taskstack's worker or the raw baseline and returns it
// once its admin port answers.
// loops is a worker layout: dequeue loops (WORKER_SERVERS) and the
// concurrency of each; concurrency 0 means the harness's -concurrency,
// servers 0 WORKER_SERVERS=auto (taskstack only; raw gets one loop).
type loops struct{ servers, concurrency int }

func (l loops) String() string {
	if l.servers == 0 {
		return "auto"
	}
	if l.concurrency == 0 {
		return strconv.Itoa(l.servers)
	}
	return fmt.Sprintf("%dx%d", l.servers, l.concurrency)
}

func (b *bench) startWorker(kind string, queues []string, lp loops, interval time.Duration) (*proc, error) {
	return retryStart(func() (*proc, error) { return b.startWorkerOnce(kind, queues, lp, interval) })
}

// retryStart tries start up to three times while the process exits before
// it answers (a port taken between benchproc.FreeAddr and the bind).
func retryStart(start func() (*proc, error)) (*proc, error) {
	var err error
	for range 3 {
		var p *proc
		if p, err = start(); err == nil || !errors.As(err, new(*benchproc.ExitedError)) {
			return p, err
		}
		fmt.Fprintf(os.Stderr, "  retrying: %v\n", err)
	}
	return nil, err
}

func (b *bench) startWorkerOnce(kind string, queues []string, lp loops, interval time.Duration) (*proc, error) {
	servers, conc := lp.servers, lp.concurrency
	if conc == 0 {
		conc = b.o.concurrency
	}
	admin, err := benchproc.FreeAddr()
	if err != nil {
		return nil, err
	}
	var p *proc
	if kind == kindTS {
		p, err = startProc(b.bins["worker"], b.logPath("worker"), b.telemetryEnv(map[string]string{
			"WORKER_ADMIN_ADDR":          admin,
			"WORKER_QUEUES":              weights(queues),
			"WORKER_CONCURRENCY":         strconv.Itoa(conc),
			"WORKER_SERVERS":             map[bool]string{true: "auto", false: strconv.Itoa(servers)}[servers == 0],
			"WORKER_TASK_CHECK_INTERVAL": interval.String(),
		}))
	} else {
		p, err = startProc(b.bins["rawworker"], b.logPath("rawworker"), map[string]string{
			"REDIS_ADDR": b.redis.Addr, "ADMIN_ADDR": admin, "QUEUES": weights(queues),
			"CONCURRENCY": strconv.Itoa(conc), "SERVERS": strconv.Itoa(max(1, servers)),
			"TASK_CHECK_INTERVAL": interval.String(),
		})
	}
	if err != nil {
		return nil, err
	}
	if err := p.WaitHTTP("http://"+admin+"/healthz", 20*time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	p.url = "http://" + admin
	return p, nil
}

// startApp runs taskstack's app or the raw baseline and returns it once it
// answers, with its base URL; the proc's url is where its /metrics and (in
// a -tags pprof build) /debug/pprof are: the admin port for taskstack, the
// one port for raw.
func (b *bench) startApp(kind string) (*proc, string, error) {
	var base string
	p, err := retryStart(func() (*proc, error) {
		p, u, err := b.startAppOnce(kind)
		base = u
		return p, err
	})
	return p, base, err
}

func (b *bench) startAppOnce(kind string) (*proc, string, error) {
	addr, err := benchproc.FreeAddr()
	if err != nil {
		return nil, "", err
	}
	admin, err := benchproc.FreeAddr()
	if err != nil {
		return nil, "", err
	}
	var p *proc
	if kind == kindTS {
		p, err = startProc(b.bins["app"], b.logPath("app"), b.telemetryEnv(map[string]string{"APP_ADDR": addr, "APP_ADMIN_ADDR": admin}))
	} else {
		admin = addr
		p, err = startProc(b.bins["rawapp"], b.logPath("rawapp"), map[string]string{"APP_ADDR": addr, "REDIS_ADDR": b.redis.Addr})
	}
	if err != nil {
		return nil, "", err
	}
	if err := p.WaitHTTP("http://"+addr+"/healthz", 20*time.Second); err != nil {
		p.Stop()
		return nil, "", err
	}
	p.url = "http://" + admin
	return p, "http://" + addr, nil
}

// enqueue puts one demo:echo task on queue the way each stack's producer
// does: taskstack through its catalogue and store (validation, producer
// span, trace and enqueue-time headers), raw with asynq.NewTask and the
// same options.
func (b *bench) enqueue(ctx context.Context, kind, queue string, timed bool) error {
	if kind == kindTS {
		p, err := b.cat.Prepare(tasks.Request{Type: tasks.TypeEcho, Payload: json.RawMessage(echoPayload), Queue: queue})
		if err != nil {
			return err
		}
		_, err = b.store.Enqueue(ctx, p)
		return err
	}
	opts := append([]asynq.Option{asynq.Queue(queue)}, b.rawOpts...)
	var t *asynq.Task
	if timed {
		t = asynq.NewTaskWithHeaders(tasks.TypeEcho, []byte(echoPayload),
			map[string]string{"bench-enqueued-at": strconv.FormatInt(time.Now().UnixNano(), 10)}, opts...)
	} else {
		t = asynq.NewTask(tasks.TypeEcho, []byte(echoPayload), opts...)
	}
	_, err := b.raw.EnqueueContext(ctx, t)
	return err
}

// backlog is the number of pending and active tasks over queues.
func (b *bench) backlog(ctx context.Context, queues []string) (pending, active int64, err error) {
	pipe := b.redis.Client.Pipeline()
	var pc, ac []interface{ Val() int64 }
	for _, q := range queues {
		pc = append(pc, pipe.LLen(ctx, "asynq:{"+q+"}:pending"))
		ac = append(ac, pipe.LLen(ctx, "asynq:{"+q+"}:active"))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, 0, err
	}
	for i := range pc {
		pending += pc[i].Val()
		active += ac[i].Val()
	}
	return pending, active, nil
}

// prefill enqueues n tasks round-robin over queues from 16 goroutines.
func (b *bench) prefill(ctx context.Context, kind string, queues []string, n int) error {
	err := benchproc.Parallel(n, 16, func(i int64) error {
		return b.enqueue(ctx, kind, queues[i%int64(len(queues))], false)
	})
	if err != nil {
		return fmt.Errorf("pre-enqueue: %w", err)
	}
	return nil
}

// processing enqueues n tasks round-robin over queues with no worker
// running, then starts one and times first dequeue to last completion by
// polling the pending and active lists every 5 ms.
func (b *bench) processing(ctx context.Context, kind string, queues []string, lp loops) (r procResult, err error) {
	if err := b.redis.Flush(ctx); err != nil {
		return r, err
	}
	n := b.o.tasks
	if err := b.prefill(ctx, kind, queues, n); err != nil {
		return r, err
	}

	type span struct{ first, last time.Time }
	res := make(chan span, 1)
	pollErr := make(chan error, 1)
	stop := make(chan struct{})
	go func() {
		var s span
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		deadline := time.Now().Add(5 * time.Minute)
		for {
			select {
			case <-stop:
				pollErr <- fmt.Errorf("stopped")
				return
			case now := <-tick.C:
				pending, active, err := b.backlog(ctx, queues)
				if err != nil {
					pollErr <- err
					return
				}
				if s.first.IsZero() && pending < int64(n) {
					s.first = now
				}
				if !s.first.IsZero() && pending == 0 && active == 0 {
					s.last = now
					res <- s
					return
				}
				if now.After(deadline) {
					pollErr <- fmt.Errorf("%s: %d pending, %d active after 5 min", kind, pending, active)
					return
				}
			}
		}
	}()
	w, err := b.startWorker(kind, queues, lp, b.o.checkInterval)
	if err != nil {
		close(stop)
		return r, err
	}
	defer w.Stop()
	cpu0 := w.CPUSeconds()
	rcpu0, err := b.redis.CPUSeconds(ctx)
	if err != nil {
		return r, err
	}
	select {
	case s := <-res:
		r.rss = w.PeakRSS()
		r.cpuPerTask = (w.CPUSeconds() - cpu0) / float64(n) * 1e6
		rcpu1, err := b.redis.CPUSeconds(ctx)
		if err != nil {
			return r, err
		}
		r.redisCPUPerTask = (rcpu1 - rcpu0) / float64(n) * 1e6
		if err := b.checkNoFailures(ctx, queues); err != nil {
			return r, err
		}
		r.tps = float64(n) / s.last.Sub(s.first).Seconds()
		return r, nil
	case err := <-pollErr:
		return r, err
	}
}

// procResult is one processing measurement.
type procResult struct {
	tps             float64
	rss             float64 // MiB
	cpuPerTask      float64 // worker CPU, µs per task (startup included)
	redisCPUPerTask float64 // redis-server CPU, µs per task
}

func (b *bench) checkNoFailures(ctx context.Context, queues []string) error {
	for _, q := range queues {
		for _, k := range []string{"retry", "archived"} {
			if n, _ := b.redis.Client.ZCard(ctx, "asynq:{"+q+"}:"+k).Result(); n > 0 {
				return fmt.Errorf("%d tasks in %s/%s: the worker failed tasks", n, q, k)
			}
		}
	}
	return nil
}

// latencyResult is one idle-cost and enqueue→start measurement.
type latencyResult struct {
	idleCmds float64
	idleCPU  float64 // percent of one core used by redis-server while the worker idles
	p50, p99 float64 // milliseconds
	samples  int
}

// latency starts an idle worker on the three queues, counts the Redis
// commands it costs per second while idle, then enqueues at a steady rate
// and measures enqueue→start per task: for raw from every task (the
// baseline times them itself), for taskstack from the sampled traces (the
// consumer span's start received by the sink minus the producer span's
// start recorded by the harness's enqueuer).
func (b *bench) latency(ctx context.Context, kind string, lp loops, interval, idle, dur time.Duration) (latencyResult, error) {
	var r latencyResult
	if err := b.redis.Flush(ctx); err != nil {
		return r, err
	}
	w, err := b.startWorker(kind, threeQueues, lp, interval)
	if err != nil {
		return r, err
	}
	stopped := false
	defer func() {
		if !stopped {
			w.Stop()
		}
	}()
	time.Sleep(time.Second)
	c0, err := b.redis.CommandsProcessed(ctx)
	if err != nil {
		return r, err
	}
	cpu0, err := b.redis.CPUSeconds(ctx)
	if err != nil {
		return r, err
	}
	t0 := time.Now()
	time.Sleep(idle)
	c1, err := b.redis.CommandsProcessed(ctx)
	if err != nil {
		return r, err
	}
	cpu1, err := b.redis.CPUSeconds(ctx)
	if err != nil {
		return r, err
	}
	secs := time.Since(t0).Seconds()
	r.idleCmds = float64(c1-c0-2) / secs
	r.idleCPU = 100 * (cpu1 - cpu0) / secs
	if dur <= 0 {
		return r, nil
	}

	if kind == kindTS {
		b.sink.record(true)
		b.starts.record(true)
		defer b.sink.record(false)
		defer b.starts.record(false)
	}
	interval0 := time.Second / time.Duration(b.o.rate)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := time.Now()
	for i := 0; ; i++ {
		at := start.Add(time.Duration(i) * interval0)
		if at.Sub(start) >= dur {
			break
		}
		time.Sleep(time.Until(at))
		sem <- struct{}{}
		q := threeQueues[i%len(threeQueues)]
		wg.Go(func() {
			defer func() { <-sem }()
			if err := b.enqueue(ctx, kind, q, true); err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return r, fmt.Errorf("%d enqueues failed", n)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		pending, active, err := b.backlog(ctx, threeQueues)
		if err != nil {
			return r, err
		}
		if pending == 0 && active == 0 {
			break
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("%s: backlog not drained", kind)
		}
		time.Sleep(10 * time.Millisecond)
	}

	var lat []int64
	if kind == kindRaw {
		resp, err := http.Get(w.url + "/latency")
		if err != nil {
			return r, err
		}
		err = json.NewDecoder(resp.Body).Decode(&lat)
		resp.Body.Close()
		if err != nil {
			return r, err
		}
		w.Stop()
		stopped = true
	} else {
		w.Stop() // flushes the worker's spans to the sink
		stopped = true
		cons := b.sink.consumerStarts()
		for id, prod := range b.starts.snapshot() {
			if c, ok := cons[id]; ok {
				lat = append(lat, int64(c.Sub(prod)))
			}
		}
		slices.Sort(lat)
	}
	if len(lat) == 0 {
		return r, fmt.Errorf("%s: no latency samples", kind)
	}
	r.samples = len(lat)
	r.p50 = float64(percentile(lat, 0.50)) / 1e6
	r.p99 = float64(percentile(lat, 0.99)) / 1e6
	return r, nil
}

// percentile of sorted values, nearest rank.
func percentile(sorted []int64, q float64) int64 {
	i := int(float64(len(sorted))*q+0.5) - 1
	return sorted[max(0, min(len(sorted)-1, i))]
}

type httpResult struct {
	rps, p50, p99, rss float64
	requests           int64
	cpuPerReq          float64 // app CPU, µs per request
	non2xx             int64
}

var wrkScript = `wrk.method = "POST"
wrk.body = '{"type":"demo:echo","payload":{"arg":"x","sleep":"0s"},"queue":"high"}'
wrk.headers["Content-Type"] = "application/json"
`

// httpLoad runs wrk against POST /api/v1/tasks (no worker running: the
// tasks pile up in Redis, as they would during a burst).
func (b *bench) httpLoad(ctx context.Context, kind string) (httpResult, error) {
	var r httpResult
	if err := b.redis.Flush(ctx); err != nil {
		return r, err
	}
	app, base, err := b.startApp(kind)
	if err != nil {
		return r, err
	}
	defer app.Stop()
	script := filepath.Join(b.dir, "post.lua")
	if err := os.WriteFile(script, []byte(wrkScript), 0o644); err != nil {
		return r, err
	}
	url := base + "/api/v1/tasks"
	if b.o.httpWarmup > 0 {
		if _, err := runWrk(ctx, script, url, b.o.conns, b.o.httpWarmup); err != nil {
			return r, err
		}
	}
	cpu0 := app.CPUSeconds()
	r, err = runWrk(ctx, script, url, b.o.conns, b.o.httpDur)
	if err != nil {
		return r, err
	}
	if r.requests > 0 {
		r.cpuPerReq = (app.CPUSeconds() - cpu0) / float64(r.requests) * 1e6
	}
	if r.non2xx > 0 {
		return r, fmt.Errorf("%s: %d non-2xx responses (see %s)", kind, r.non2xx, app.LogPath())
	}
	r.rss = app.PeakRSS()
	return r, nil
}

var (
	reRPS     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	rePct     = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	reReqs    = regexp.MustCompile(`(\d+) requests in`)
	reNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	reSockErr = regexp.MustCompile(`Socket errors:.*`)
)

func runWrk(ctx context.Context, script, url string, conns int, dur time.Duration) (httpResult, error) {
	var r httpResult
	cmd := exec.CommandContext(ctx, "wrk", "-t", "2", "-c", strconv.Itoa(conns), "-d", fmt.Sprintf("%ds", int(dur.Seconds())),
		"--latency", "-s", script, url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return r, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	s := string(out)
	m := reRPS.FindStringSubmatch(s)
	if m == nil {
		return r, fmt.Errorf("wrk output without Requests/sec:\n%s", s)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	for _, m := range rePct.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		switch m[3] {
		case "us":
			v /= 1000
		case "s":
			v *= 1000
		}
		if m[1] == "50" {
			r.p50 = v
		} else {
			r.p99 = v
		}
	}
	if m := reReqs.FindStringSubmatch(s); m != nil {
		r.requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := reNon2xx.FindStringSubmatch(s); m != nil {
		r.non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if se := reSockErr.FindString(s); se != "" {
		fmt.Fprintf(os.Stderr, "  wrk: %s\n", strings.TrimSpace(se))
	}
	return r, nil
}

// producerStarts records, while on, the start of each sampled producer span
// the harness's enqueuer creates, by trace ID.
type producerStarts struct {
	mu     sync.Mutex
	on     bool
	starts map[[16]byte]time.Time
}

func (p *producerStarts) record(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.on = on
	if on {
		p.starts = map[[16]byte]time.Time{}
	}
}

func (p *producerStarts) snapshot() map[[16]byte]time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[[16]byte]time.Time, len(p.starts))
	for k, v := range p.starts {
		out[k] = v
	}
	return out
}

func (p *producerStarts) OnStart(_ context.Context, s sdktrace.ReadWriteSpan) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.on && strings.HasPrefix(s.Name(), "send ") {
		p.starts[s.SpanContext().TraceID()] = s.StartTime()
	}
}
func (p *producerStarts) OnEnd(sdktrace.ReadOnlySpan)      {}
func (p *producerStarts) Shutdown(context.Context) error   { return nil }
func (p *producerStarts) ForceFlush(context.Context) error { return nil }

// Command harness is taskstack's benchmark (`make bench`): it builds the
// real app and worker and a raw-asynq baseline (bench/cmd/rawapp,
// bench/cmd/rawworker) as static stripped binaries, starts its own
// redis-server and a local OTLP sink, and measures both stacks in the same
// run, interleaved, so that their ratios are meaningful on a shared, noisy
// machine: HTTP enqueue with wrk, processing throughput of pre-enqueued
// no-op tasks, enqueue→start latency at a steady rate with the idle polling
// cost in Redis commands/s, peak RSS and binary sizes. Then it tries several
// dequeue loops per worker process (WORKER_SERVERS) and a sweep of
// WORKER_TASK_CHECK_INTERVAL. It prints a table with taskstack/raw ratios
// and can rewrite the results block of docs/benchmarks.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"taskstack/bench/internal/benchproc"
	"taskstack/internal/store"
	"taskstack/internal/tasks"
)

type options struct {
	runs, aofRuns  int
	conns          int
	httpDur        time.Duration
	httpWarmup     time.Duration
	tasks          int
	concurrency    int
	checkInterval  time.Duration
	rate           int
	latDur, idle   time.Duration
	servers        []loops
	sweepIntervals []time.Duration
	sweepDur       time.Duration
	docs           string
	command        string
	keep           bool
	pprof          string
	phases         map[string]bool
	sustain        time.Duration
	sustainConns   int
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("harness", flag.ContinueOnError)
	fs.IntVar(&o.runs, "runs", 3, "rounds with Redis without persistence (medians over them)")
	fs.IntVar(&o.aofRuns, "aof-runs", 1, "rounds with Redis AOF everysec")
	fs.IntVar(&o.conns, "conns", 32, "HTTP connections")
	fs.DurationVar(&o.httpDur, "http", 20*time.Second, "HTTP load duration")
	fs.DurationVar(&o.httpWarmup, "http-warmup", 2*time.Second, "HTTP warm-up before each load (not measured)")
	fs.IntVar(&o.tasks, "tasks", 20000, "pre-enqueued tasks per processing measurement")
	fs.IntVar(&o.concurrency, "concurrency", 20, "worker concurrency per dequeue loop (taskstack's default)")
	fs.DurationVar(&o.checkInterval, "check-interval", 10*time.Millisecond, "TaskCheckInterval of both workers (taskstack's default)")
	fs.IntVar(&o.rate, "rate", 500, "steady enqueue rate of the latency phase, tasks/s")
	fs.DurationVar(&o.latDur, "latency", 10*time.Second, "latency phase duration")
	fs.DurationVar(&o.idle, "idle", 5*time.Second, "how long idle Redis commands are counted")
	servers := fs.String("servers", "auto,2,4,2x10", "worker layouts to try besides one loop: auto (WORKER_SERVERS=auto, also measured for idle cost and latency), N (WORKER_SERVERS=N) or NxC (and WORKER_CONCURRENCY=C); empty: none")
	sweep := fs.String("sweep", "1ms,10ms,50ms,100ms,1s", "TaskCheckInterval values of the idle-cost/latency sweep (empty: none)")
	fs.DurationVar(&o.sweepDur, "sweep-latency", 5*time.Second, "latency duration of each sweep point")
	fs.StringVar(&o.docs, "docs", "", "rewrite the results block of this markdown file (docs/benchmarks.md)")
	fs.StringVar(&o.command, "command", "", "command line to print in the report (default: this one)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (binaries, logs)")
	fs.StringVar(&o.pprof, "pprof", "", "after the rounds, profile both stacks (binaries built with -tags pprof) into this directory")
	fs.DurationVar(&o.sustain, "sustain", 30*time.Second, "sustained end-to-end phase: HTTP submissions at the highest rate that keeps the backlog bounded while the worker processes, this long")
	fs.IntVar(&o.sustainConns, "sustain-conns", 16, "HTTP clients of the sustained phase (paced on the backlog)")
	phases := fs.String("phases", "http,processing,latency,servers,sustained", "phases of each round to run")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for s := range strings.SplitSeq(*servers, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if s == "auto" {
			o.servers = append(o.servers, loops{}) // WORKER_SERVERS=auto
			continue
		}
		ns, cs, hasC := strings.Cut(s, "x")
		n, err := strconv.Atoi(ns)
		c := 0
		if hasC {
			c, err = strconv.Atoi(cs)
		}
		if err != nil || n < 1 || (hasC && c < 1) {
			return o, fmt.Errorf("-servers: %q", s)
		}
		o.servers = append(o.servers, loops{servers: n, concurrency: c})
	}
	for s := range strings.SplitSeq(*sweep, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return o, fmt.Errorf("-sweep: %w", err)
		}
		o.sweepIntervals = append(o.sweepIntervals, d)
	}
	o.phases = map[string]bool{}
	for p := range strings.SplitSeq(*phases, ",") {
		o.phases[strings.TrimSpace(p)] = true
	}
	if o.runs < 1 {
		return o, fmt.Errorf("-runs must be at least 1")
	}
	if o.command == "" {
		o.command = "go run ./bench/cmd/harness " + strings.Join(args, " ")
	}
	return o, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		os.Exit(2)
	}
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	for _, tool := range []string{"wrk", "redis-server"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: run `make bench` as root (bench/bench.sh installs it) or apt-get install -y %s", tool, tool)
		}
	}
	root, err := benchproc.ModuleRoot("the harness")
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "taskstack-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Println("work directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	started := time.Now().UTC()
	load0 := loadAvg()
	fmt.Println("building static stripped binaries (CGO_ENABLED=0 -trimpath -ldflags \"-s -w\")")
	bins, sizes, err := build(ctx, root, dir)
	if err != nil {
		return err
	}

	sk, err := startSink()
	if err != nil {
		return err
	}
	defer sk.close()

	// The harness enqueues like the app does: producer spans sampled at
	// 10%, W3C trace context in the task headers.
	starts := &producerStarts{}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.1))),
		sdktrace.WithSpanProcessor(starts))
	defer tp.Shutdown(context.Background())

	res := newResults()
	for k, v := range sizes {
		res.add(k, v)
	}
	total := o.runs + o.aofRuns
	for i := range total {
		aof := i >= o.runs
		if err := ctx.Err(); err != nil {
			return err
		}
		fmt.Printf("round %d/%d (Redis %s)\n", i+1, total, map[bool]string{false: "no persistence", true: "AOF everysec"}[aof])
		if err := round(ctx, o, bins, dir, sk, tp, starts, res, i, aof); err != nil {
			return fmt.Errorf("round %d: %w", i+1, err)
		}
	}
	if o.pprof != "" {
		if err := profilePass(ctx, o, root, dir, o.pprof, sk, tp, starts); err != nil {
			return fmt.Errorf("profiles: %w", err)
		}
	}
	var sweep []sweepPoint
	if len(o.sweepIntervals) > 0 {
		fmt.Println("sweep: TaskCheckInterval and WORKER_SERVERS vs idle cost and latency (taskstack, one run each)")
		sweep, err = runSweep(ctx, o, bins, dir, sk, tp, starts)
		if err != nil {
			return fmt.Errorf("sweep: %w", err)
		}
	}
	rep := report{o: o, res: res, sweep: sweep, started: started, elapsed: time.Since(started), machine: machineInfo(), load: [2]string{load0, loadAvg()}}
	fmt.Println()
	fmt.Print(rep.text())
	if o.docs != "" {
		docs := o.docs
		if !filepath.IsAbs(docs) {
			docs = filepath.Join(root, docs)
		}
		if err := rep.writeDocs(docs); err != nil {
			return err
		}
		fmt.Println("wrote", o.docs)
	}
	return nil
}

func build(ctx context.Context, root, dir string, tags ...string) (map[string]string, map[string]float64, error) {
	args := []string{"build", "-trimpath", "-ldflags", "-s -w"}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	args = append(args, "-o", dir+"/", "./cmd/app", "./cmd/worker", "./bench/cmd/rawapp", "./bench/cmd/rawworker")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("go build: %w\n%s", err, out)
	}
	bins := map[string]string{}
	sizes := map[string]float64{}
	for name, key := range map[string]string{
		"app": "taskstack/app_size", "worker": "taskstack/worker_size",
		"rawapp": "raw/app_size", "rawworker": "raw/worker_size",
	} {
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err != nil {
			return nil, nil, err
		}
		bins[name] = p
		sizes[key] = float64(fi.Size()) / (1 << 20)
	}
	return bins, sizes, nil
}

// newBench starts a fresh redis-server for one round.
func newBench(ctx context.Context, o options, bins map[string]string, dir string, sk *sink, tp *sdktrace.TracerProvider, starts *producerStarts, name string, aof bool) (*bench, error) {
	rdir := filepath.Join(dir, name)
	if err := os.MkdirAll(rdir, 0o755); err != nil {
		return nil, err
	}
	rs, err := benchproc.StartRedis(rdir, aof, false)
	if err != nil {
		return nil, err
	}
	b := &bench{o: o, bins: bins, dir: rdir, redis: rs, sink: sk, starts: starts}
	b.cat = tasks.NewCatalogue()
	b.store = store.New(store.Options{Redis: rs.Client, Retention: 24 * time.Hour, Queues: tasks.Queues(), Tracer: tp, Propagator: propagation.TraceContext{}})
	b.raw = asynq.NewClient(asynq.RedisClientOpt{Addr: rs.Addr, PoolSize: 64})
	// The options taskstack's catalogue gives demo:echo, so both stacks
	// store and keep the same tasks.
	p, err := b.cat.Prepare(tasks.Request{Type: tasks.TypeEcho, Payload: []byte(echoPayload)})
	if err != nil {
		return nil, err
	}
	b.rawOpts = []asynq.Option{asynq.Timeout(p.Timeout), asynq.MaxRetry(p.MaxRetry), asynq.Retention(24 * time.Hour)}
	return b, nil
}

func (b *bench) close() {
	_ = b.raw.Close()
	b.redis.Close()
}

func round(ctx context.Context, o options, bins map[string]string, dir string, sk *sink, tp *sdktrace.TracerProvider, starts *producerStarts, res *results, i int, aof bool) error {
	b, err := newBench(ctx, o, bins, dir, sk, tp, starts, fmt.Sprintf("round%d", i+1), aof)
	if err != nil {
		return err
	}
	defer b.close()
	prefix := ""
	if aof {
		prefix = "aof:"
	}
	// Alternate which stack goes first, so a drift in background load does
	// not always favour the same one.
	kinds := []string{kindTS, kindRaw}
	if i%2 == 1 {
		kinds = []string{kindRaw, kindTS}
	}
	for _, k := range kinds {
		if !o.phases["http"] {
			break
		}
		r, err := b.httpLoad(ctx, k)
		if err != nil {
			return err
		}
		fmt.Printf("  %-9s http      %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  app peak RSS %5.1f MiB  app CPU %5.1f µs/req\n", k, r.rps, r.p50, r.p99, r.rss, r.cpuPerReq)
		res.add(prefix+k+"/http_rps", r.rps)
		res.add(prefix+k+"/http_p50", r.p50)
		res.add(prefix+k+"/http_p99", r.p99)
		res.add(prefix+k+"/app_rss", r.rss)
		res.add(prefix+k+"/app_cpu", r.cpuPerReq)
	}
	for _, layout := range []struct {
		key    string
		queues []string
	}{{"proc3", threeQueues}, {"proc1", oneQueue}} {
		for _, k := range kinds {
			if !o.phases["processing"] {
				break
			}
			r, err := b.processing(ctx, k, layout.queues, loops{servers: 1})
			if err != nil {
				return err
			}
			fmt.Printf("  %-9s %-9s %8.0f tasks/s  worker peak RSS %5.1f MiB  CPU/task: worker %5.1f µs, Redis %5.1f µs\n",
				k, layout.key, r.tps, r.rss, r.cpuPerTask, r.redisCPUPerTask)
			res.add(prefix+k+"/"+layout.key, r.tps)
			if layout.key == "proc3" {
				res.add(prefix+k+"/worker_rss", r.rss)
				res.add(prefix+k+"/worker_cpu", r.cpuPerTask)
				res.add(prefix+k+"/redis_cpu", r.redisCPUPerTask)
			}
		}
	}
	for _, k := range kinds {
		if !o.phases["latency"] {
			break
		}
		r, err := b.latency(ctx, k, loops{servers: 1}, o.checkInterval, o.idle, o.latDur)
		if err != nil {
			return err
		}
		fmt.Printf("  %-9s latency   p50 %6.2f ms  p99 %6.2f ms (%d samples)  idle %6.0f Redis cmds/s, Redis CPU %.1f%%\n", k, r.p50, r.p99, r.samples, r.idleCmds, r.idleCPU)
		res.add(prefix+k+"/lat_p50", r.p50)
		res.add(prefix+k+"/lat_p99", r.p99)
		res.add(prefix+k+"/idle_cmds", r.idleCmds)
		res.add(prefix+k+"/idle_cpu", r.idleCPU)
		if k != kindTS || !slices.Contains(o.servers, loops{}) {
			continue
		}
		r, err = b.latency(ctx, k, loops{}, o.checkInterval, o.idle, o.latDur)
		if err != nil {
			return err
		}
		fmt.Printf("  %-9s latency   p50 %6.2f ms  p99 %6.2f ms (%d samples)  idle %6.0f Redis cmds/s, Redis CPU %.1f%%  (loops auto)\n", k, r.p50, r.p99, r.samples, r.idleCmds, r.idleCPU)
		res.add(prefix+k+"/lat_p50_sauto", r.p50)
		res.add(prefix+k+"/lat_p99_sauto", r.p99)
		res.add(prefix+k+"/idle_cmds_sauto", r.idleCmds)
		res.add(prefix+k+"/idle_cpu_sauto", r.idleCPU)
	}
	for _, k := range kinds {
		if !o.phases["sustained"] {
			break
		}
		r, err := b.sustained(ctx, k, o.sustain, o.sustainConns)
		if err != nil {
			return err
		}
		fmt.Printf("  %-9s sustained submit %6.0f/s  completed %6.0f/s  pending %+6.0f/s  submit→complete p50 %6.2f ms p99 %7.2f ms (%d probes, %d unfinished)  CPU %% app %3.0f worker %3.0f redis %3.0f\n",
			k, r.submit, r.tps, r.growth, r.p50, r.p99, r.probes, r.unfinished, r.cpuApp, r.cpuWorker, r.cpuRedis)
		for key, v := range map[string]float64{"sus_submit": r.submit, "sus_tps": r.tps, "sus_growth": r.growth, "sus_pending": r.pendingEnd, "sus_p50": r.p50, "sus_p99": r.p99,
			"sus_cpu_app": r.cpuApp, "sus_cpu_worker": r.cpuWorker, "sus_cpu_redis": r.cpuRedis} {
			res.add(prefix+k+"/"+key, v)
		}
	}
	if aof || !o.phases["servers"] {
		return nil
	}
	for _, n := range o.servers {
		for _, layout := range []struct {
			key    string
			queues []string
		}{{"proc3", threeQueues}, {"proc1", oneQueue}} {
			r, err := b.processing(ctx, kindTS, layout.queues, n)
			if err != nil {
				return err
			}
			fmt.Printf("  %-9s %-9s %8.0f tasks/s  worker peak RSS %5.1f MiB  CPU/task: worker %5.1f µs, Redis %5.1f µs  (loops %s)\n",
				kindTS, layout.key, r.tps, r.rss, r.cpuPerTask, r.redisCPUPerTask, n)
			res.add(fmt.Sprintf("%s/%s_s%s", kindTS, layout.key, n), r.tps)
			if layout.key == "proc3" {
				res.add(fmt.Sprintf("%s/worker_rss_s%s", kindTS, n), r.rss)
			}
		}
	}
	return nil
}

type sweepPoint struct {
	interval time.Duration
	servers  loops
	r        latencyResult
}

func runSweep(ctx context.Context, o options, bins map[string]string, dir string, sk *sink, tp *sdktrace.TracerProvider, starts *producerStarts) ([]sweepPoint, error) {
	b, err := newBench(ctx, o, bins, dir, sk, tp, starts, "sweep", false)
	if err != nil {
		return nil, err
	}
	defer b.close()
	var points []sweepPoint
	for _, iv := range o.sweepIntervals {
		points = append(points, sweepPoint{interval: iv, servers: loops{servers: 1}})
	}
	for _, n := range o.servers {
		if n.concurrency != 0 {
			continue // concurrency does not change polling
		}
		points = append(points, sweepPoint{interval: o.checkInterval, servers: n})
	}
	for i := range points {
		p := &points[i]
		r, err := b.latency(ctx, kindTS, p.servers, p.interval, o.idle, o.sweepDur)
		if err != nil {
			return nil, err
		}
		p.r = r
		fmt.Printf("  interval %-6s servers %s  idle %6.0f Redis cmds/s, Redis CPU %4.1f%%  p50 %7.2f ms  p99 %7.2f ms (%d samples)\n",
			p.interval, p.servers, r.idleCmds, r.idleCPU, r.p50, r.p99, r.samples)
	}
	return points, nil
}

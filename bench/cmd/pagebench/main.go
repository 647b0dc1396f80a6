// Command pagebench measures the tutorial's own path (`make bench-page`):
// the page, against the seed it started from (bench/seed/app.py: Flask
// under gevent's WSGIServer, RQ), with the same tool in the same run on the
// same redis-server, which it starts on a free loopback port:
//
//   - the form: the seed's POST / (enqueue, render the page) and
//     taskstack's POST /tasks (enqueue, 303, GET /?submitted=<id>),
//     `hey -z 20s -c 32`;
//   - taskstack's GET / with no task and with 100,000 pending tasks,
//     `hey -z 10s -c 32`;
//   - the Redis commands per second the app causes with the page open
//     live (server-sent events) by 1 viewer and by 200, each held 30 s, and
//     with nobody watching.
//
// No worker runs. Each measurement is repeated (-runs, the seed and
// taskstack alternating first), and the medians printed as a markdown table
// that -docs writes into its block of docs/benchmarks.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace/noop"

	"taskstack/bench/internal/benchproc"
	"taskstack/internal/store"
	"taskstack/internal/tasks"
)

type options struct {
	runs            int
	conns           int
	post, get, warm time.Duration
	tasks           int
	viewers         int
	hold, idle      time.Duration
	python          string
	docs, command   string
	keep            bool
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("pagebench", flag.ContinueOnError)
	fs.IntVar(&o.runs, "runs", 3, "rounds (medians over them)")
	fs.IntVar(&o.conns, "conns", 32, "hey's concurrent workers (-c)")
	fs.DurationVar(&o.post, "post", 20*time.Second, "duration of each form load (hey -z)")
	fs.DurationVar(&o.get, "get", 10*time.Second, "duration of each GET / load (hey -z)")
	fs.DurationVar(&o.warm, "warmup", 2*time.Second, "hey run before each load, not measured")
	fs.IntVar(&o.tasks, "tasks", 100_000, "pending tasks stored for the second GET / load")
	fs.IntVar(&o.viewers, "viewers", 200, "live viewers held at once")
	fs.DurationVar(&o.hold, "hold", 30*time.Second, "how long the viewers are held")
	fs.DurationVar(&o.idle, "idle", 10*time.Second, "how long the idle app's Redis commands are counted")
	fs.StringVar(&o.python, "python", "/usr/bin/python3", "Python with Debian's python3-flask, python3-rq, python3-gevent")
	fs.StringVar(&o.docs, "docs", "", "rewrite the bench-page results block of this markdown file")
	fs.StringVar(&o.command, "command", "", "command line to print in the report (default: this one)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (binary, logs)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.runs < 1 || o.conns < 1 || o.viewers < 1 {
		return o, fmt.Errorf("-runs, -conns and -viewers must be at least 1")
	}
	if o.command == "" {
		o.command = "go run ./bench/cmd/pagebench " + strings.Join(args, " ")
	}
	return o, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pagebench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	root, err := benchproc.ModuleRoot("pagebench")
	if err != nil {
		return err
	}
	if err := checkTools(o); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "pagebench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(stdout, "work directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	app := filepath.Join(dir, "app")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", app, "./cmd/app")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	sink, err := startSink()
	if err != nil {
		return err
	}
	defer sink.Close()

	rep := report{o: o, start: time.Now(), load0: loadAverage()}
	for i := range o.runs {
		fmt.Fprintf(stdout, "round %d of %d (load average %s)\n", i+1, o.runs, loadAverage())
		r, err := round(ctx, o, root, app, filepath.Join(dir, fmt.Sprint(i)), sink, i%2 == 1, stdout)
		if err != nil {
			if o.keep {
				return fmt.Errorf("round %d: %w (logs in %s)", i+1, err, dir)
			}
			return fmt.Errorf("round %d: %w (-keep keeps the processes' logs)", i+1, err)
		}
		rep.rounds = append(rep.rounds, r)
	}
	rep.end, rep.load1 = time.Now(), loadAverage()
	md := rep.markdown()
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, md)
	if o.docs != "" {
		path := o.docs
		if !filepath.IsAbs(path) {
			path = filepath.Join(root, path) // relative to the module, as make passes it
		}
		return writeDocs(path, md)
	}
	return nil
}

// roundResult is one round's measurements.
type roundResult struct {
	seedPost, post, get0, getN load
	idle, one, many            float64 // Redis commands/s
}

// round starts a fresh redis-server, the seed and the app, measures, and
// stops all three, whatever happens.
func round(ctx context.Context, o options, root, app, dir string, sink *sink, appFirst bool, log io.Writer) (res roundResult, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	rs, err := benchproc.StartRedis(dir, false, true)
	if err != nil {
		return res, err
	}
	defer rs.Close()
	redisURL := "redis://" + rs.Addr + "/0"

	seedAddr, err := benchproc.FreeAddr()
	if err != nil {
		return res, err
	}
	seedProc, err := startProc(dir, "seed", o.python, []string{"SEED_ADDR=" + seedAddr, "REDIS_URL=" + redisURL},
		filepath.Join(root, "bench/seed/app.py"))
	if err != nil {
		return res, err
	}
	defer seedProc.Stop()

	appAddr, err := benchproc.FreeAddr()
	if err != nil {
		return res, err
	}
	adminAddr, err := benchproc.FreeAddr()
	if err != nil {
		return res, err
	}
	appProc, err := startProc(dir, "app", app, []string{
		"APP_ENV=dev", "LOG_FORMAT=json", "LOG_LEVEL=info",
		"REDIS_URL=" + redisURL, "APP_ADDR=" + appAddr, "APP_ADMIN_ADDR=" + adminAddr,
		// The form load stores far more than the default cap of 100,000
		// pending tasks per queue; the seed has no cap either.
		"QUEUE_MAX_PENDING=0",
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + sink.addr,
		"OTEL_TRACES_SAMPLER=parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG=0.1",
	})
	if err != nil {
		return res, err
	}
	defer appProc.Stop()
	seedURL, appURL := "http://"+seedAddr+"/", "http://"+appAddr
	if err := seedProc.WaitHTTP(seedURL, 20*time.Second); err != nil {
		return res, err
	}
	if err := appProc.WaitHTTP("http://"+adminAddr+"/readyz", 20*time.Second); err != nil {
		return res, err
	}

	measure := func(name string, h heyRun, d time.Duration, p *benchproc.Proc, into *load) error {
		if _, err := hey(ctx, h, o.warm, o.conns, p); err != nil {
			return fmt.Errorf("%s warm-up: %w", name, err)
		}
		l, err := hey(ctx, h, d, o.conns, p)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fmt.Fprintf(log, "  %-32s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  %6.0f µs CPU/req  (load %s)\n", name, l.rps, l.p50, l.p99, l.cpuPerReq, loadAverage())
		*into = l
		return nil
	}
	seedForm := func() error {
		return measure("seed POST /", heyRun{url: seedURL, method: "POST", body: "arg=x"}, o.post, seedProc, &res.seedPost)
	}
	appForm := func() error {
		return measure("taskstack POST /tasks", heyRun{url: appURL + "/tasks", method: "POST", body: "arg=x&sleep=0s&queue=default"}, o.post, appProc, &res.post)
	}
	forms := []func() error{seedForm, appForm}
	if appFirst {
		forms = []func() error{appForm, seedForm}
	}
	for _, f := range forms {
		if err := f(); err != nil {
			return res, err
		}
	}

	if err := rs.Flush(ctx); err != nil {
		return res, err
	}
	if err := measure("taskstack GET / (0 tasks)", heyRun{url: appURL + "/"}, o.get, appProc, &res.get0); err != nil {
		return res, err
	}
	st := store.New(store.Options{Redis: rs.Client, Retention: 24 * time.Hour, Queues: tasks.Queues(),
		Tracer: noop.NewTracerProvider(), Propagator: propagation.TraceContext{}})
	t0 := time.Now()
	if err := seedTasks(ctx, st, o.tasks); err != nil {
		return res, fmt.Errorf("store %d tasks: %w", o.tasks, err)
	}
	fmt.Fprintf(log, "  stored %d pending tasks in %s\n", o.tasks, time.Since(t0).Round(time.Millisecond))
	if err := measure(fmt.Sprintf("taskstack GET / (%d tasks)", o.tasks), heyRun{url: appURL + "/"}, o.get, appProc, &res.getN); err != nil {
		return res, err
	}

	// Let the snapshots of the loads expire before counting.
	time.Sleep(2 * time.Second)
	if res.idle, err = idleCommands(ctx, rs, o.idle); err != nil {
		return res, err
	}
	if res.one, err = viewers(ctx, appURL, rs, 1, o.hold); err != nil {
		return res, fmt.Errorf("1 viewer: %w", err)
	}
	if res.many, err = viewers(ctx, appURL, rs, o.viewers, o.hold); err != nil {
		return res, fmt.Errorf("%d viewers: %w", o.viewers, err)
	}
	fmt.Fprintf(log, "  Redis commands/s: idle %.1f, 1 viewer %.1f, %d viewers %.1f\n", res.idle, res.one, o.viewers, res.many)
	if ctx.Err() != nil {
		return res, errInterrupted
	}
	return res, nil
}

func checkTools(o options) error {
	for _, t := range []string{"hey", "redis-server"} {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("%s not found: apt-get install -y %s (bench/page.sh does it as root)", t, t)
		}
	}
	if out, err := exec.Command(o.python, "-c", "import flask, rq, gevent").CombinedOutput(); err != nil {
		return fmt.Errorf("%s lacks Flask, RQ or gevent (apt-get install -y python3-flask python3-rq python3-gevent): %v\n%s", o.python, err, out)
	}
	return nil
}

// sink is a local OTLP/HTTP endpoint that accepts every span and drops it.
type sink struct {
	*http.Server
	addr string
}

func startSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{addr: ln.Addr().String(), Server: &http.Server{ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/x-protobuf")
		})}}
	go func() { _ = s.Serve(ln) }()
	return s, nil
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// startProc starts bin as name, logging to dir/name.log, with env (and
// PATH) as its only environment, in its own process group: a Ctrl-C in
// the terminal reaches the benchmark, which then stops its processes in
// order.
func startProc(dir, name, bin string, env []string, args ...string) (*benchproc.Proc, error) {
	return benchproc.Start(benchproc.Spec{Name: name, Bin: bin, Args: args, Env: env,
		Log: filepath.Join(dir, name+".log"), OwnGroup: true})
}

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// results holds every round's value of each measurement, in round order.
type results struct{ vals map[string][]float64 }

func newResults() *results { return &results{vals: map[string][]float64{}} }

func (r *results) add(key string, v float64) { r.vals[key] = append(r.vals[key], v) }

type stat struct {
	med, min, max float64
	n             int
}

func summarize(v []float64) stat {
	if len(v) == 0 {
		return stat{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{med: m, min: s[0], max: s[len(s)-1], n: len(s)}
}

func (r *results) stat(key string) stat { return summarize(r.vals[key]) }

// ratio is the median over rounds of a/b measured in the same round.
func (r *results) ratio(a, b string) stat {
	va, vb := r.vals[a], r.vals[b]
	var q []float64
	for i := range min(len(va), len(vb)) {
		if vb[i] != 0 {
			q = append(q, va[i]/vb[i])
		}
	}
	return summarize(q)
}

type metric struct {
	key, label, unit string
	prec             int
}

var metrics = []metric{
	{"http_rps", "HTTP enqueue, 32 conns", "req/s", 0},
	{"http_p50", "HTTP enqueue p50", "ms", 2},
	{"http_p99", "HTTP enqueue p99", "ms", 2},
	{"proc3", "processing, high:6,default:3,low:1", "tasks/s", 0},
	{"proc1", "processing, one queue", "tasks/s", 0},
	{"lat_p50", "enqueue→start p50 @ rate", "ms", 2},
	{"lat_p99", "enqueue→start p99 @ rate", "ms", 2},
	{"idle_cmds", "idle worker Redis load", "cmds/s", 0},
	{"idle_cpu", "idle worker Redis CPU", "% of a core", 1},
	{"app_rss", "app peak RSS (HTTP load)", "MiB", 1},
	{"worker_rss", "worker peak RSS (processing)", "MiB", 1},
	{"app_cpu", "app CPU per request (HTTP load)", "µs", 1},
	{"worker_cpu", "worker CPU per task (3 queues)", "µs", 1},
	{"redis_cpu", "redis-server CPU per task (3 queues)", "µs", 1},
	{"sus_submit", "sustained: submitted (HTTP)", "tasks/s", 0},
	{"sus_tps", "sustained: completed", "tasks/s", 0},
	{"sus_growth", "sustained: pending backlog growth", "tasks/s", 0},
	{"sus_pending", "sustained: pending at the end", "tasks", 0},
	{"sus_p50", "sustained: submit→complete p50", "ms", 1},
	{"sus_p99", "sustained: submit→complete p99", "ms", 1},
	{"sus_cpu_app", "sustained: app CPU", "% of a core", 0},
	{"sus_cpu_worker", "sustained: worker CPU", "% of a core", 0},
	{"sus_cpu_redis", "sustained: redis-server CPU", "% of a core", 0},
	{"app_size", "app binary (static, stripped)", "MiB", 1},
	{"worker_size", "worker binary (static, stripped)", "MiB", 1},
}

func fmtStat(s stat, prec int) string {
	if s.n == 0 {
		return "–"
	}
	if s.n == 1 {
		return fmt.Sprintf("%.*f", prec, s.med)
	}
	return fmt.Sprintf("%.*f (%.*f–%.*f)", prec, s.med, prec, s.min, prec, s.max)
}

type report struct {
	o       options
	res     *results
	sweep   []sweepPoint
	started time.Time
	elapsed time.Duration
	machine string
	load    [2]string // /proc/loadavg 1-minute figure at start and end
}

// table renders rows as markdown (md) or aligned text.
func table(md bool, header []string, rows [][]string) string {
	var b strings.Builder
	if md {
		b.WriteString("| " + strings.Join(header, " | ") + " |\n|")
		for range header {
			b.WriteString("---|")
		}
		b.WriteString("\n")
		for _, r := range rows {
			b.WriteString("| " + strings.Join(r, " | ") + " |\n")
		}
		return b.String()
	}
	w := make([]int, len(header))
	for _, r := range append([][]string{header}, rows...) {
		for i, c := range r {
			w[i] = max(w[i], len([]rune(c)))
		}
	}
	line := func(r []string) {
		for i, c := range r {
			b.WriteString(c + strings.Repeat(" ", w[i]-len([]rune(c))+2))
		}
		b.WriteString("\n")
	}
	line(header)
	for _, r := range rows {
		line(r)
	}
	return b.String()
}

func (rp report) mainRows(prefix string) [][]string {
	var rows [][]string
	for _, m := range metrics {
		if prefix != "" && strings.HasSuffix(m.key, "_size") {
			continue
		}
		label := strings.Replace(m.label, "@ rate", fmt.Sprintf("@ %d/s", rp.o.rate), 1)
		ts := rp.res.stat(prefix + kindTS + "/" + m.key)
		raw := rp.res.stat(prefix + kindRaw + "/" + m.key)
		ratio := rp.res.ratio(prefix+kindTS+"/"+m.key, prefix+kindRaw+"/"+m.key)
		rows = append(rows, []string{label + " (" + m.unit + ")", fmtStat(ts, m.prec), fmtStat(raw, m.prec), fmtStat(ratio, 2)})
	}
	return rows
}

func (rp report) serverRows() [][]string {
	rows := [][]string{}
	for _, n := range append([]loops{{servers: 1}}, rp.o.servers...) {
		suffix := ""
		if n != (loops{servers: 1}) {
			suffix = "_s" + n.String()
		}
		p3, p1 := kindTS+"/proc3"+suffix, kindTS+"/proc1"+suffix
		rows = append(rows, []string{
			n.label(rp.o.concurrency),
			fmtStat(rp.res.stat(p3), 0), fmtStat(rp.res.ratio(p3, kindRaw+"/proc3"), 2),
			fmtStat(rp.res.stat(p1), 0), fmtStat(rp.res.ratio(p1, kindRaw+"/proc1"), 2),
			fmtStat(rp.res.stat(kindTS+"/worker_rss"+suffix), 1),
		})
	}
	return rows
}

var serverHeader = []string{"loops × concurrency", "3 queues (tasks/s)", "× raw (1 loop)", "1 queue (tasks/s)", "× raw (1 loop)", "worker peak RSS (MiB)"}

func (l loops) label(defaultConcurrency int) string {
	c := l.concurrency
	if c == 0 {
		c = defaultConcurrency
	}
	if l.servers == 0 {
		return fmt.Sprintf("auto × %d", c)
	}
	return fmt.Sprintf("%d × %d", l.servers, c)
}

func (rp report) sweepRows() [][]string {
	var rows [][]string
	for _, p := range rp.sweep {
		rows = append(rows, []string{p.interval.String(), p.servers.String(),
			fmt.Sprintf("%.0f", p.r.idleCmds), fmt.Sprintf("%.1f", p.r.idleCPU), fmt.Sprintf("%.2f", p.r.p50), fmt.Sprintf("%.2f", p.r.p99), fmt.Sprint(p.r.samples)})
	}
	return rows
}

var sweepHeader = []string{"TaskCheckInterval", "WORKER_SERVERS", "idle Redis cmds/s", "idle Redis CPU (%)", "p50 (ms)", "p99 (ms)", "samples"}

func (rp report) targets() [][]string {
	r := rp.res
	check := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**missed**"
	}
	var rows [][]string
	// ratioRow judges the same-round ratio a/b against bound (at least when
	// atLeast, else at most); a ratio not measured (-phases) is not judged.
	ratioRow := func(label, a, b string, bound float64, atLeast bool) {
		q := r.ratio(a, b)
		if q.n == 0 {
			rows = append(rows, []string{label, "not measured", ""})
			return
		}
		ok := q.med <= bound
		if atLeast {
			ok = q.med >= bound
		}
		rows = append(rows, []string{label, fmt.Sprintf("%.2f× (%s against %s)", q.med, fmtStat(r.stat(a), 1), fmtStat(r.stat(b), 1)), check(ok)})
	}
	absRow := func(label, key, unit string, bound float64, atLeast bool) {
		v := r.stat(key)
		if v.n == 0 {
			rows = append(rows, []string{label, "not measured", ""})
			return
		}
		ok := v.med <= bound
		if atLeast {
			ok = v.med >= bound
		}
		rows = append(rows, []string{label, fmt.Sprintf("%.2f %s", v.med, unit), check(ok)})
	}
	ts, raw := kindTS+"/", kindRaw+"/"
	ratioRow("HTTP enqueue ≥ 0.85× raw req/s", ts+"http_rps", raw+"http_rps", 0.85, true)
	ratioRow("app CPU per request ≤ 1.3× raw", ts+"app_cpu", raw+"app_cpu", 1.3, false)
	ratioRow("processing ≥ 1.0× raw, 3 queues, one loop each", ts+"proc3", raw+"proc3", 1.0, true)
	ratioRow("processing ≥ 1.0× raw, 1 queue, one loop each", ts+"proc1", raw+"proc1", 1.0, true)
	ratioRow("20,000-task backlog, WORKER_SERVERS=auto ≥ 1.4× raw's one loop (3 queues)", ts+"proc3_sauto", raw+"proc3", 1.4, true)
	ratioRow("20,000-task backlog, WORKER_SERVERS=auto ≥ 1.4× raw's one loop (1 queue)", ts+"proc1_sauto", raw+"proc1", 1.4, true)
	ratioRow("idle Redis commands/s, WORKER_SERVERS=auto ≤ 1.1× raw's idle", ts+"idle_cmds_sauto", raw+"idle_cmds", 1.1, false)
	ratioRow(fmt.Sprintf("enqueue→start p99 @ %d/s, WORKER_SERVERS=auto, unchanged (≤ 1.1× raw)", rp.o.rate), ts+"lat_p99_sauto", raw+"lat_p99", 1.1, false)
	absRow(fmt.Sprintf("enqueue→start p99 @ %d/s, WORKER_SERVERS=auto, ≤ 20 ms", rp.o.rate), ts+"lat_p99_sauto", "ms", 20, false)
	ratioRow("sustained end to end: completed tasks/s ≥ 1.0× raw", ts+"sus_tps", raw+"sus_tps", 1.0, true)
	// The pacer keeps 500–2,000 tasks pending while the worker keeps up;
	// more at the end means the backlog got away from it.
	absRow("sustained: backlog bounded (pending at the end ≤ 2,500)", ts+"sus_pending", "tasks", 2500, false)
	ratioRow("worker peak RSS ≤ 1.3× raw", ts+"worker_rss", raw+"worker_rss", 1.3, false)
	ratioRow("app peak RSS ≤ 1.5× raw", ts+"app_rss", raw+"app_rss", 1.5, false)
	absRow("HTTP enqueue p99 ≤ 15 ms", ts+"http_p99", "ms", 15, false)
	return rows
}

func (rp report) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "taskstack vs raw asynq — median (min–max) of %d rounds, Redis without persistence; ratio = median of per-round taskstack/raw\n\n", rp.o.runs)
	b.WriteString(table(false, []string{"measure", "taskstack", "raw asynq", "taskstack/raw"}, rp.mainRows("")))
	if rp.o.aofRuns > 0 {
		fmt.Fprintf(&b, "\nRedis with AOF everysec (%d round(s))\n\n", rp.o.aofRuns)
		b.WriteString(table(false, []string{"measure", "taskstack", "raw asynq", "taskstack/raw"}, rp.mainRows("aof:")))
	}
	if len(rp.o.servers) > 0 {
		b.WriteString("\nseveral dequeue loops in one worker process (taskstack)\n\n")
		b.WriteString(table(false, serverHeader, rp.serverRows()))
	}
	if len(rp.sweep) > 0 {
		fmt.Fprintf(&b, "\nidle cost vs latency (taskstack, %d/s for %s, one run)\n\n", rp.o.rate, rp.o.sweepDur)
		b.WriteString(table(false, sweepHeader, rp.sweepRows()))
	}
	b.WriteString("\ntargets\n\n")
	b.WriteString(table(false, []string{"target", "measured", ""}, rp.targets()))
	fmt.Fprintf(&b, "\n%s; load average %s at start, %s at end; took %s\n", rp.machine, rp.load[0], rp.load[1], rp.elapsed.Round(time.Second))
	return b.String()
}

const (
	docsBegin = "<!-- bench:results:begin (generated by `make bench`; edit outside this block) -->"
	docsEnd   = "<!-- bench:results:end -->"
)

func (rp report) markdown() string {
	var b strings.Builder
	busy := ""
	for _, l := range rp.load {
		if v, err := strconv.ParseFloat(l, 64); err == nil && v > 2 {
			busy = " (above 2: other work was competing for the cores)"
		}
	}
	fmt.Fprintf(&b, "Run %s on %s; 1-minute load average %s at start and %s at end%s; took %s.\n\n",
		rp.started.Format("2006-01-02 15:04 MST"), rp.machine, rp.load[0], rp.load[1], busy, rp.elapsed.Round(time.Second))
	fmt.Fprintf(&b, "Command: `%s`\n\n", rp.o.command)
	fmt.Fprintf(&b, "Settings: HTTP %d connections for %s (after %s warm-up); %d pre-enqueued tasks per processing run; "+
		"latency at %d tasks/s for %s; idle cost over %s; concurrency %d and TaskCheckInterval %s in both workers.\n\n",
		rp.o.conns, rp.o.httpDur, rp.o.httpWarmup, rp.o.tasks, rp.o.rate, rp.o.latDur, rp.o.idle, rp.o.concurrency, rp.o.checkInterval)
	fmt.Fprintf(&b, "### taskstack vs raw asynq, Redis without persistence\n\nMedian (min–max) of %d rounds; the ratio is the median of the per-round taskstack/raw ratios.\n\n", rp.o.runs)
	b.WriteString(table(true, []string{"measure", "taskstack", "raw asynq", "taskstack/raw"}, rp.mainRows("")))
	if rp.o.aofRuns > 0 {
		fmt.Fprintf(&b, "\n### Redis with AOF everysec\n\n%d round(s).\n\n", rp.o.aofRuns)
		b.WriteString(table(true, []string{"measure", "taskstack", "raw asynq", "taskstack/raw"}, rp.mainRows("aof:")))
	}
	if len(rp.o.servers) > 0 {
		fmt.Fprintf(&b, "\n### Several dequeue loops per worker process (`WORKER_SERVERS`)\n\ntaskstack's worker, %d rounds, compared with raw asynq's single loop in the same rounds.\n\n", rp.o.runs)
		b.WriteString(table(true, serverHeader, rp.serverRows()))
	}
	if len(rp.sweep) > 0 {
		fmt.Fprintf(&b, "\n### Idle cost vs latency\n\ntaskstack's worker on three queues, idle Redis commands/s over %s, then enqueue→start at %d tasks/s for %s; one run per row.\n\n", rp.o.idle, rp.o.rate, rp.o.sweepDur)
		b.WriteString(table(true, sweepHeader, rp.sweepRows()))
	}
	b.WriteString("\n### Targets\n\n")
	b.WriteString(table(true, []string{"target", "measured", ""}, rp.targets()))
	return b.String()
}

// writeDocs replaces the generated block of path, creating the file (with
// just the block) when it does not exist.
func (rp report) writeDocs(path string) error {
	block := docsBegin + "\n\n" + rp.markdown() + "\n" + docsEnd
	old, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return os.WriteFile(path, []byte("# Benchmarks\n\n"+block+"\n"), 0o644)
	case err != nil:
		return err
	}
	s := string(old)
	i, j := strings.Index(s, docsBegin), strings.Index(s, docsEnd)
	if i < 0 || j < i {
		s = strings.TrimRight(s, "\n") + "\n\n" + block + "\n"
	} else {
		s = s[:i] + block + s[j+len(docsEnd):]
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

func machineInfo() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	redisV, _ := exec.Command("redis-server", "--version").Output()
	rv := strings.Fields(string(redisV))
	ver := "redis ?"
	for _, f := range rv {
		if v, ok := strings.CutPrefix(f, "v="); ok {
			ver = "Redis " + v
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb)
		mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
	}
	return fmt.Sprintf("%d × %s%s, Linux %s, %s, %s, wrk -t2",
		runtime.NumCPU(), cpu, mem, strings.TrimSpace(string(kernel)), runtime.Version(), ver)
}

package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"taskstack/internal/testsupport"
)

// figure prints one measured figure line: "FIGURE <scenario> k=v k=v".
func figure(t *testing.T, scenario string, kv ...any) {
	t.Helper()
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		v := kv[i+1]
		if d, ok := v.(time.Duration); ok {
			v = fmt.Sprintf("%.1fs", d.Seconds())
		}
		fmt.Fprintf(&b, " %v=%v", kv[i], v)
	}
	t.Logf("FIGURE %s%s", scenario, b.String())
}

// proc is a running binary of ours with the address it serves on.
type proc struct {
	*testsupport.Process
	url     string // http://addr of the app, or of the worker's admin port
	started time.Time
}

// env is the base environment of every binary: debug JSON logs, so the
// worker's "task done" lines can be counted.
func env(redisEnv map[string]string, extra ...map[string]string) map[string]string {
	m := map[string]string{"LOG_LEVEL": "debug", "LOG_FORMAT": "json", "TASK_RETENTION": "1h"}
	for k, v := range redisEnv {
		m[k] = v
	}
	for _, e := range extra {
		for k, v := range e {
			m[k] = v
		}
	}
	return m
}

func startApp(t *testing.T, e map[string]string) *proc {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t))
	// Its admin port too: the default (:9091) is taken by any other app
	// that runs at the same time.
	own := map[string]string{"APP_ADDR": addr, "APP_ADMIN_ADDR": fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t))}
	p := &proc{Process: testsupport.StartProcess(t, testsupport.BuildBinary(t, "app"), env(e, own)), url: "http://" + addr, started: time.Now()}
	testsupport.WaitHTTP(t, p.Process, p.url+"/readyz", 60*time.Second)
	return p
}

func startWorker(t *testing.T, e map[string]string) *proc {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t))
	own := map[string]string{"WORKER_ADMIN_ADDR": addr}
	p := &proc{Process: testsupport.StartProcess(t, testsupport.BuildBinary(t, "worker"), env(e, own)), url: "http://" + addr, started: time.Now()}
	testsupport.WaitHTTP(t, p.Process, p.url+"/readyz", 60*time.Second)
	return p
}

// client has a timeout well above the app's 5 s request timeout: an answer
// that takes longer is a hang, and fails the request.
var client = &http.Client{Timeout: 20 * time.Second}

// submission is one POST /api/v1/tasks and what came back.
type submission struct {
	arg        string
	at         time.Time
	status     int
	retryAfter string
	latency    time.Duration
	err        error
	id, queue  string
}

func (s submission) accepted() bool {
	return s.status == http.StatusAccepted || s.status == http.StatusOK
}

// echoBody is a demo:echo request whose argument identifies the task.
func echoBody(arg, sleep, queue string) string {
	return fmt.Sprintf(`{"type":"demo:echo","payload":{"arg":%q,"sleep":%q},"queue":%q}`, arg, sleep, queue)
}

// post submits one task.
func post(ctx context.Context, appURL, arg, body string, header http.Header) submission {
	s := submission{arg: arg, at: time.Now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, appURL+"/api/v1/tasks", strings.NewReader(body))
	if err != nil {
		s.err = err
		return s
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	s.latency = time.Since(s.at)
	if err != nil {
		s.err = err
		return s
	}
	defer resp.Body.Close()
	s.status, s.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
	var c struct {
		ID    string `json:"id"`
		Queue string `json:"queue"`
	}
	b, _ := io.ReadAll(resp.Body)
	if s.accepted() {
		if err := json.Unmarshal(b, &c); err != nil {
			s.err = fmt.Errorf("decode %s: %w", b, err)
		}
		s.id, s.queue = c.ID, c.Queue
	}
	return s
}

// load submits n demo:echo tasks from clients goroutines, one every pace
// per client (on the queue given, or high, default and low in turn), and
// returns every submission.
type load struct {
	appURL  string
	prefix  string // task arguments are prefix-<i>
	n       int
	clients int
	pace    time.Duration
	sleep   string
	queue   string
	// accepted counts 2xx answers as they come.
	accepted atomic.Int64
}

func (l *load) run(ctx context.Context) []submission {
	out := make([]submission, l.n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range l.clients {
		wg.Go(func() {
			tick := time.NewTicker(l.pace)
			defer tick.Stop()
			for {
				i := int(next.Add(1)) - 1
				if i >= l.n || ctx.Err() != nil {
					return
				}
				arg := fmt.Sprintf("%s-%d", l.prefix, i)
				queue := l.queue
				if queue == "" {
					queue = []string{"high", "default", "low"}[i%3]
				}
				out[i] = post(ctx, l.appURL, arg, echoBody(arg, l.sleep, queue), nil)
				if out[i].accepted() {
					l.accepted.Add(1)
				}
				select {
				case <-ctx.Done():
				case <-tick.C:
				}
			}
		})
	}
	wg.Wait()
	return out
}

// taskView is a task as GET /api/v1/queues/{queue}/tasks/{id} shows it.
type taskView struct {
	ID          string     `json:"id"`
	Queue       string     `json:"queue"`
	State       string     `json:"state"`
	Result      *string    `json:"result"`
	Retried     int        `json:"retried"`
	LastError   string     `json:"last_error"`
	CompletedAt *time.Time `json:"completed_at"`
}

// getTask reads one task; found is false on 404.
func getTask(ctx context.Context, appURL, queue, id string) (taskView, bool, error) {
	var tv taskView
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, appURL+"/api/v1/queues/"+queue+"/tasks/"+id, nil)
	if err != nil {
		return tv, false, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return tv, false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return tv, true, json.NewDecoder(resp.Body).Decode(&tv)
	case http.StatusNotFound:
		return tv, false, nil
	}
	b, _ := io.ReadAll(resp.Body)
	return tv, false, fmt.Errorf("GET task %s/%s: %d %s", queue, id, resp.StatusCode, b)
}

// outcome is what became of the acknowledged tasks of a scenario.
type outcome struct {
	accepted  int
	completed int
	lost      []string // acknowledged, then gone or never completed
	wrong     []string // completed with another result
	// runs counts each task's completed handler runs ("task done" lines).
	runs map[string]int
	// rerun are tasks whose handler completed more than once.
	rerun []string
	// views are the final states, by task ID.
	views map[string]taskView
	// doneAt is when the last acknowledged task was seen completed.
	doneAt time.Time
}

// settle waits up to timeout for every acknowledged task to complete (or
// vanish: lost), then reads the handler runs from the workers' logs.
func settle(t *testing.T, appURL string, subs []submission, workers []*proc, timeout time.Duration) outcome {
	t.Helper()
	o := outcome{runs: map[string]int{}, views: map[string]taskView{}}
	pending := map[string]submission{}
	for _, s := range subs {
		if s.accepted() {
			o.accepted++
			pending[s.id] = s
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	gone := map[string]int{} // consecutive 404s: lost once it stays gone
	for len(pending) > 0 && ctx.Err() == nil {
		batch := make([]submission, 0, len(pending))
		for _, s := range pending {
			batch = append(batch, s)
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for _, s := range batch {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				tv, found, err := getTask(ctx, appURL, s.queue, s.id)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					return // retried on the next pass
				case !found:
					gone[s.id]++
					if gone[s.id] >= 3 {
						o.lost = append(o.lost, s.id+" ("+s.arg+")")
						delete(pending, s.id)
					}
				case tv.State == "completed":
					o.views[s.id] = tv
					o.completed++
					if tv.Result == nil || *tv.Result != "prefix___"+s.arg {
						o.wrong = append(o.wrong, s.id)
					}
					delete(pending, s.id)
					o.doneAt = time.Now()
				default:
					o.views[s.id] = tv
				}
			})
		}
		wg.Wait()
		if len(pending) > 0 {
			time.Sleep(200 * time.Millisecond)
		}
	}
	for id, s := range pending {
		o.lost = append(o.lost, fmt.Sprintf("%s (%s, last seen %s)", id, s.arg, o.views[id].State))
	}
	for _, w := range workers {
		for _, l := range logLines(w.Output(), "task done") {
			o.runs[l.TaskID]++
		}
	}
	for _, s := range subs {
		if s.accepted() && o.runs[s.id] > 1 {
			o.rerun = append(o.rerun, s.id)
		}
	}
	return o
}

// check fails the test for every acknowledged task that was lost or came
// out wrong, and, when once is set, for every completed handler run beyond
// the first.
func (o outcome) check(t *testing.T, once bool) {
	t.Helper()
	if len(o.lost) > 0 {
		t.Errorf("%d of %d acknowledged tasks lost: %v", len(o.lost), o.accepted, head(o.lost))
	}
	if len(o.wrong) > 0 {
		t.Errorf("%d tasks completed with a wrong result: %v", len(o.wrong), head(o.wrong))
	}
	for id, v := range o.views {
		if v.State == "completed" && o.runs[id] == 0 {
			t.Errorf("task %s completed without a 'task done' line in any worker's log", id)
			break
		}
	}
	if once && len(o.rerun) > 0 {
		t.Errorf("%d tasks ran to completion more than once: %v", len(o.rerun), head(o.rerun))
	}
}

func head(s []string) []string {
	sort.Strings(s)
	if len(s) > 10 {
		return append(s[:10:10], fmt.Sprintf("... %d more", len(s)-10))
	}
	return s
}

// logLine is the part of a worker's JSON log line the suite reads.
type logLine struct {
	Time   time.Time `json:"time"`
	Msg    string    `json:"msg"`
	TaskID string    `json:"task_id"`
}

// taskDone returns, for each task ID, when its handler's last run
// completed ("task done", logged at debug), for lines at or after since.
func taskDone(output string, since time.Time) map[string]time.Time {
	out := map[string]time.Time{}
	for _, l := range logLines(output, "task done") {
		if !l.Time.Before(since) {
			out[l.TaskID] = l.Time
		}
	}
	return out
}

// logLines returns the JSON log lines whose message is msg.
func logLines(output, msg string) []logLine {
	var out []logLine
	sc := bufio.NewScanner(strings.NewReader(output))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	needle := `"msg":"` + msg + `"`
	for sc.Scan() {
		line := sc.Bytes()
		if !strings.Contains(string(line), needle) {
			continue
		}
		var l logLine
		if json.Unmarshal(line, &l) == nil && l.Msg == msg {
			out = append(out, l)
		}
	}
	return out
}

// firstDone is the earliest "task done" of a worker's log at or after since.
func firstDone(output string, since time.Time) (time.Time, bool) {
	var first time.Time
	for _, at := range taskDone(output, since) {
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	return first, !first.IsZero()
}

// probe polls url every interval until stop, recording each answer.
type probe struct {
	mu      sync.Mutex
	samples []sample
}

type sample struct {
	at, end time.Time // request sent, answer (or failure) received
	status  int       // 0: no answer
}

func startProbe(ctx context.Context, url string, every time.Duration) *probe {
	p := &probe{}
	go func() {
		c := &http.Client{Timeout: 2 * time.Second}
		for ctx.Err() == nil {
			s := sample{at: time.Now()}
			if resp, err := c.Get(url); err == nil {
				s.status = resp.StatusCode
				resp.Body.Close()
			}
			s.end = time.Now()
			p.mu.Lock()
			p.samples = append(p.samples, s)
			p.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(every):
			}
		}
	}()
	return p
}

// failing returns how long the probe saw failures (from the first failing
// request to the last failing answer) and how many requests failed.
func (p *probe) failing() (time.Duration, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var first, last time.Time
	n := 0
	for _, s := range p.samples {
		if s.status != http.StatusOK {
			n++
			if first.IsZero() {
				first = s.at
			}
			last = s.end
		}
	}
	return last.Sub(first), n
}

// lastOK reports whether the latest sample was a 200.
func (p *probe) lastOK() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.samples) > 0 && p.samples[len(p.samples)-1].status == http.StatusOK
}

// statuses counts submissions by HTTP status (0: no answer).
func statuses(subs []submission) map[int]int {
	out := map[int]int{}
	for _, s := range subs {
		out[s.status]++
	}
	return out
}

// percentile of durations (p in [0,1]).
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(p*float64(len(ds))))]
}

// activeTasks lists the tasks the API shows active in queue.
func activeTasks(t *testing.T, appURL, queue string) []string {
	t.Helper()
	resp, err := client.Get(appURL + "/api/v1/tasks?state=active&queue=" + queue + "&page_size=100")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Tasks []taskView `json:"tasks"`
		Total int        `json:"total"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tv := range page.Tasks {
		ids = append(ids, tv.ID)
	}
	return ids
}

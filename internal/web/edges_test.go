package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"taskstack/internal/guard"
	"taskstack/internal/store"
	"taskstack/internal/tasks"
	"taskstack/internal/telemetry"
	"taskstack/internal/testsupport"
	"taskstack/internal/web"
)

// TestTaskJSONResultAndTimeout: a task that has not run has a null result
// (not an empty one), and its timeout; a task without a timeout of its own
// (asynq's deadline instead) has no timeout field.
func TestTaskJSONResultAndTimeout(t *testing.T) {
	t.Parallel()
	f := setup(t)
	res := f.post(t, `{"type":"demo:echo","payload":{"arg":"x","sleep":"0s"},"process_in":"1h"}`)
	if res.status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", res.status, res.body)
	}
	self := res.header.Get("Location")
	task := f.do(t, http.MethodGet, self, nil).json(t)
	if r, ok := task["result"]; !ok || r != nil {
		t.Errorf("result of a task that has not run: %#v (present %v), want null", r, ok)
	}
	if task["timeout"] != "11m0s" {
		t.Errorf("timeout %v, want demo:echo's 11m0s", task["timeout"])
	}

	c := asynq.NewClientFromRedisClient(f.rc)
	info, err := c.Enqueue(asynq.NewTask("test:raw", nil), asynq.Queue("default"), asynq.Deadline(time.Now().Add(time.Hour)), asynq.ProcessIn(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	raw := f.do(t, http.MethodGet, "/api/v1/queues/default/tasks/"+info.ID, nil)
	if raw.status != http.StatusOK {
		t.Fatalf("GET the raw task: %d %s", raw.status, raw.body)
	}
	if _, ok := raw.json(t)["timeout"]; ok {
		t.Errorf("a task with no timeout shows one: %s", raw.body)
	}
}

// TestLoginKeepsWhereYouWereGoing: the login page sends you back to the
// page you asked for, also after a wrong token, and a good login goes
// there.
func TestLoginKeepsWhereYouWereGoing(t *testing.T) {
	t.Parallel()
	f := setupAuth(t, nil)
	const where = "/tasks/high/some-task"
	hidden := `name="next" value="` + where + `"`
	if res := f.do(t, http.MethodGet, where, nil); res.status != http.StatusUnauthorized || !strings.Contains(string(res.body), hidden) {
		t.Errorf("GET %s without a session: %d, want the login page with %s:\n%s", where, res.status, hidden, res.body)
	}
	form := func(tok string) *strings.Reader {
		return strings.NewReader(url.Values{"token": {tok}, "next": {where}}.Encode())
	}
	ct := []string{"Content-Type", "application/x-www-form-urlencoded"}
	if res := f.do(t, http.MethodPost, "/login", form("tsk_wrong"), ct...); res.status != http.StatusUnauthorized || !strings.Contains(string(res.body), hidden) {
		t.Errorf("a wrong token: %d, want the login page again with %s:\n%s", res.status, hidden, res.body)
	}
	client := testsupport.HTTPClient()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Post(f.srv.URL+"/login", "application/x-www-form-urlencoded", form(f.tokens["reader"]))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != where {
		t.Errorf("login: %d to %q, want 303 to %s", resp.StatusCode, resp.Header.Get("Location"), where)
	}
}

// TestLoginLockout: an address that keeps sending wrong tokens to the
// login form is answered 429 once its failures are used up.
func TestLoginLockout(t *testing.T) {
	t.Parallel()
	f := setupAuth(t, nil)
	var codes []int
	for range 8 {
		res := f.do(t, http.MethodPost, "/login", strings.NewReader("token=tsk_wrong"), "Content-Type", "application/x-www-form-urlencoded")
		codes = append(codes, res.status)
	}
	// 5 failures at once, then one every 10 s: 429 from the sixth on.
	if codes[0] != http.StatusUnauthorized || !slices.Contains(codes[5:], http.StatusTooManyRequests) {
		t.Errorf("wrong logins answered %v, want 401 first and 429 once locked out", codes)
	}
}

// TestRateLimitRetryAfterAndCount: Retry-After is the time the budget takes
// to refill what was asked (1 s at 2 a second), and a batch over the
// budget counts each refused item once.
func TestRateLimitRetryAfterAndCount(t *testing.T) {
	t.Parallel()
	f := setupAuth(t, func(o *web.Options) { o.SubmitLimit = guard.NewLimiter(2, 1) })
	body := `{"type":"demo:echo","payload":{"arg":"x"}}`
	// Two submissions at once: the second finds the budget empty, unless a
	// busy machine let half a second pass between them; then again.
	var over response
	for range 10 {
		f.post(t, body, f.as("writer")...)
		if over = f.post(t, body, f.as("writer")...); over.status == http.StatusTooManyRequests {
			break
		}
	}
	if over.status != http.StatusTooManyRequests || over.header.Get("Retry-After") != "1" {
		t.Errorf("over the budget: %d, Retry-After %q; want 429 after 1 s", over.status, over.header.Get("Retry-After"))
	}

	g := setupAuth(t, func(o *web.Options) { o.SubmitLimit = guard.NewLimiter(0.001, 3) })
	items := make([]string, 5)
	for i := range items {
		items[i] = body
	}
	b := g.do(t, http.MethodPost, "/api/v1/batches", strings.NewReader(`{"tasks":[`+strings.Join(items, ",")+`]}`), g.as("writer")...)
	var out struct {
		Results []struct {
			Status int `json:"status"`
		} `json:"results"`
	}
	if err := json.Unmarshal(b.body, &out); err != nil {
		t.Fatalf("batch: %d %s", b.status, b.body)
	}
	var accepted, refused int
	for _, r := range out.Results {
		switch r.Status {
		case http.StatusAccepted:
			accepted++
		case http.StatusTooManyRequests:
			refused++
		}
	}
	if accepted != 3 || refused != 2 {
		t.Errorf("batch of 5 with a burst of 3: %d accepted, %d refused: %s", accepted, refused, b.body)
	}
	if n := testutil.ToFloat64(counter(t, g.reg, "taskstack_tasks_rejected_total")); n != 2 {
		t.Errorf("taskstack_tasks_rejected_total = %v, want 2", n)
	}
}

// TestBatchAtTheQueueCap: a batch's items for one queue are admitted
// together against its pending cap: all of them fit, or none.
func TestBatchAtTheQueueCap(t *testing.T) {
	t.Parallel()
	r := testsupport.StartRedis(t)
	rc := redis.NewClient(&redis.Options{Addr: r.Addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rc.Close() })
	st := store.New(store.Options{Redis: rc, Retention: time.Hour, Queues: tasks.Queues(), MaxPending: 2})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go st.Watch(ctx, 20*time.Millisecond)
	app, err := web.New(web.Options{Store: st, Catalogue: tasks.NewCatalogue(), Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	f := &fixture{srv: srv}
	item := `{"type":"demo:echo","queue":"high"}`
	statuses := func(n int) []int {
		items := make([]string, n)
		for i := range items {
			items[i] = item
		}
		b := f.do(t, http.MethodPost, "/api/v1/batches", strings.NewReader(`{"tasks":[`+strings.Join(items, ",")+`]}`))
		var out struct {
			Results []struct {
				Status int `json:"status"`
			} `json:"results"`
		}
		if err := json.Unmarshal(b.body, &out); err != nil {
			t.Fatalf("batch: %d %s", b.status, b.body)
		}
		var got []int
		for _, r := range out.Results {
			got = append(got, r.Status)
		}
		return got
	}
	// Wait for the first reading: until then nothing is capped.
	testsupport.Eventually(t, 10*time.Second, "the store's first capacity reading", func() bool {
		return st.Admit("high", 3) != nil
	})
	if got := statuses(3); !slices.Equal(got, []int{429, 429, 429}) {
		t.Errorf("3 items into a queue capped at 2: %v, want all refused", got)
	}
	if got := statuses(2); !slices.Equal(got, []int{202, 202}) {
		t.Errorf("2 items into an empty queue capped at 2: %v, want both accepted", got)
	}
}

// TestRetriesLeft: a task retried once of its 3 retries has 2 left, and
// its timeline has the failure once: from asynq when no attempt record
// says so, from the record when one does (also one written before asynq
// counted the retry).
func TestRetriesLeft(t *testing.T) {
	t.Parallel()
	f := setup(t)
	res := f.post(t, `{"type":"demo:echo","payload":{"arg":"x","sleep":"0s"},"queue":"high","max_retry":3}`)
	if res.status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", res.status, res.body)
	}
	self := res.header.Get("Location")
	// A server whose handler fails, with a retry an hour away: the task
	// waits in the retry state with one retry used.
	srv := asynq.NewServerFromRedisClient(f.rc, asynq.Config{
		Queues: map[string]int{"high": 1}, TaskCheckInterval: 10 * time.Millisecond, LogLevel: asynq.ErrorLevel,
		RetryDelayFunc: func(int, error, *asynq.Task) time.Duration { return time.Hour },
	})
	mux := asynq.NewServeMux()
	mux.HandleFunc(tasks.TypeEcho, func(context.Context, *asynq.Task) error { return errors.New("boom") })
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	var got struct {
		State       string `json:"state"`
		Retried     int    `json:"retried"`
		RetriesLeft *int   `json:"retries_left"`
		Timeline    []struct {
			Event   string `json:"event"`
			Attempt int    `json:"attempt"`
		} `json:"timeline"`
	}
	events := func() []string {
		t.Helper()
		if err := json.Unmarshal(f.do(t, http.MethodGet, self, nil).body, &got); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range got.Timeline {
			out = append(out, fmt.Sprintf("%s %d", e.Event, e.Attempt))
		}
		return out
	}
	testsupport.Eventually(t, 15*time.Second, "the task in retry", func() bool {
		events()
		return got.State == "retry"
	})
	if got.Retried != 1 || got.RetriesLeft == nil || *got.RetriesLeft != 2 {
		t.Errorf("retried %d, retries left %v; want 1 and 2", got.Retried, got.RetriesLeft)
	}
	if diff := cmp.Diff([]string{"enqueued 0", "attempt_failed 1", "retry_scheduled 2"}, events()); diff != "" {
		t.Errorf("timeline without attempt records (-want +got):\n%s", diff)
	}
	id := path.Base(self)
	now := time.Now()
	// Then the answer, which viewers share for a moment, shows it.
	record := func(n int) []string {
		t.Helper()
		a := store.Attempt{Queue: "high", TaskID: id, N: n, StartedAt: now.Add(-time.Second), FinishedAt: now, Error: "boom", Worker: "w"}
		if err := f.store.RecordAttempts(context.Background(), []store.Attempt{a}); err != nil {
			t.Fatal(err)
		}
		var ev []string
		testsupport.Eventually(t, 10*time.Second, fmt.Sprintf("attempt %d in the timeline", n), func() bool {
			ev = events()
			return slices.Contains(ev, fmt.Sprintf("attempt_started %d", n))
		})
		return ev
	}
	if diff := cmp.Diff([]string{"enqueued 0", "attempt_started 1", "attempt_failed 1", "retry_scheduled 2"}, record(1)); diff != "" {
		t.Errorf("timeline with the failure recorded (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"enqueued 0", "attempt_started 1", "attempt_failed 1", "attempt_started 2", "attempt_failed 2", "retry_scheduled 2"}, record(2)); diff != "" {
		t.Errorf("timeline with a record ahead of asynq's count (-want +got):\n%s", diff)
	}
}

// TestServerFaultsAreLoggedSampled: a 5xx (500 or 503) is logged, at most
// once per kind every few seconds; a client's
// mistake (4xx) is not logged, and only problems that say when to retry
// carry Retry-After.
func TestServerFaultsAreLoggedSampled(t *testing.T) {
	t.Parallel()
	r := testsupport.StartRedis(t)
	rc := redis.NewClient(&redis.Options{Addr: r.Addr, DialTimeout: time.Second, ReadTimeout: time.Second, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rc.Close() })
	logs := testsupport.NewLogBuffer(t)
	app, _ := newApp(t, rc, web.Options{Registry: prometheus.NewRegistry(), Logger: telemetry.NewLogger(logs, "json", slog.LevelDebug)})
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	f := &fixture{srv: srv}
	failed := func() []string { return logs.Lines(`"msg":"request failed"`) }

	res := f.do(t, http.MethodGet, "/api/v1/queues/high/tasks/nope", nil)
	if res.status != http.StatusNotFound || res.header.Get("Retry-After") != "" {
		t.Errorf("an unknown task: %d, Retry-After %q; want 404 without", res.status, res.header.Get("Retry-After"))
	}
	if l := failed(); len(l) != 0 {
		t.Errorf("a 404 was logged as a failure: %v", l)
	}

	// A key of the wrong type where a task should be: an error nobody
	// classified, so 500.
	if err := rc.Set(context.Background(), "asynq:{high}:t:broken", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if res := f.do(t, http.MethodGet, "/api/v1/queues/high/tasks/broken", nil); res.status != http.StatusInternalServerError {
		t.Fatalf("a task key of the wrong type: %d %s, want 500", res.status, res.body)
	}
	if l := failed(); len(l) != 1 || !strings.Contains(l[0], `"status":500`) || strings.Contains(l[0], "suppressed") {
		t.Errorf("after a 500, the failure lines: %v; want one, with status 500 and nothing suppressed", l)
	}

	// Two 503s: the second is left out if it comes within the interval,
	// logged if it does not (each waits for Redis to time out, and a busy
	// machine may stretch that); either way nothing was left out before
	// a line that is written.
	r.Stop()
	for range 2 {
		if res := f.do(t, http.MethodGet, "/api/v1/queues", nil); res.status != http.StatusServiceUnavailable {
			t.Fatalf("queues with Redis down: %d", res.status)
		}
	}
	l := failed()
	if n := len(l) - 1; n < 1 || n > 2 || !strings.Contains(l[1], `"status":503`) {
		t.Errorf("after two 503s, the failure lines: %v; want one or two more, for 503", l)
	}
	for _, line := range l {
		if strings.Contains(line, "suppressed") {
			t.Errorf("a line says some were left out, none were: %s", line)
		}
	}
}

// TestSearchLinksCarryTheCursor: a search's first page links to itself
// without a cursor and to the next page with one; the next page's own link
// carries its cursor.
func TestSearchLinksCarryTheCursor(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for range 3 {
		if res := f.post(t, `{"type":"demo:fail","payload":{"message":"x"},"process_in":"1h"}`); res.status != http.StatusAccepted {
			t.Fatalf("submit: %d %s", res.status, res.body)
		}
	}
	type page struct {
		Tasks []struct{} `json:"tasks"`
		Links struct {
			Self string `json:"self"`
			Next string `json:"next"`
		} `json:"links"`
	}
	get := func(path string) page {
		t.Helper()
		var p page
		res := f.do(t, http.MethodGet, path, nil)
		if err := json.Unmarshal(res.body, &p); err != nil || res.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, res.status, res.body)
		}
		return p
	}
	first := get("/api/v1/tasks?type=demo:fail&page_size=1")
	if strings.Contains(first.Links.Self, "cursor=") || !strings.Contains(first.Links.Next, "cursor=") {
		t.Fatalf("first page links %+v: want self without a cursor, next with one", first.Links)
	}
	second := get(first.Links.Next)
	if second.Links.Self != first.Links.Next {
		t.Errorf("the next page's self link %q, want the link that led to it, %q", second.Links.Self, first.Links.Next)
	}
}

// TestPageLinks: the first page has no link back, the second links back to
// the first.
func TestPageLinks(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for range 3 {
		if res := f.post(t, `{"type":"demo:echo","payload":{"arg":"x"},"queue":"low"}`); res.status != http.StatusAccepted {
			t.Fatalf("submit: %d %s", res.status, res.body)
		}
	}
	links := func(path string) map[string]any {
		t.Helper()
		res := f.do(t, http.MethodGet, path, nil)
		if res.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, res.status, res.body)
		}
		l, _ := res.json(t)["links"].(map[string]any)
		return l
	}
	first := links("/api/v1/tasks?queue=low&state=pending&page_size=1")
	if _, ok := first["prev"]; ok || first["next"] == nil {
		t.Errorf("first page links %v: want next and no prev", first)
	}
	second := links(first["next"].(string))
	if second["prev"] != first["self"] {
		t.Errorf("second page links back to %v, want the first page %v", second["prev"], first["self"])
	}
}

// TestErrorPages: a person's error page says what was wrong for a 4xx,
// never a server fault's text for a 5xx, and when to retry only when
// there is something to wait for.
func TestErrorPages(t *testing.T) {
	t.Parallel()
	f := setup(t)
	res := f.do(t, http.MethodGet, "/tasks/high/nope", nil)
	if res.status != http.StatusNotFound || res.header.Get("Retry-After") != "" || !strings.Contains(string(res.body), "This task does not exist") {
		t.Errorf("an unknown task's page: %d, Retry-After %q:\n%s", res.status, res.header.Get("Retry-After"), res.body)
	}
	if err := f.rc.Set(context.Background(), "asynq:{high}:t:broken", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	res = f.do(t, http.MethodGet, "/tasks/high/broken", nil)
	if body := string(res.body); res.status != http.StatusInternalServerError || !strings.Contains(body, "Something went wrong on our side") || strings.Contains(body, "WRONGTYPE") {
		t.Errorf("a server fault's page: %d:\n%s", res.status, body)
	}
	f.redis.Stop()
	res = f.do(t, http.MethodGet, "/tasks/high/any", nil)
	if res.status != http.StatusServiceUnavailable || res.header.Get("Retry-After") == "" || !strings.Contains(string(res.body), "The task store is unavailable right now") {
		t.Errorf("the page with Redis down: %d, Retry-After %q:\n%s", res.status, res.header.Get("Retry-After"), res.body)
	}
}

// TestEnqueueOutcomes: taskstack_tasks_enqueued_total says ok for a task
// enqueued, rejected for the client's mistake, error for Redis's.
func TestEnqueueOutcomes(t *testing.T) {
	t.Parallel()
	f := setup(t)
	if res := f.post(t, `{"type":"demo:echo","payload":{"arg":"x"},"queue":"high"}`); res.status != http.StatusAccepted {
		t.Fatalf("submit: %d", res.status)
	}
	for range 2 {
		if res := f.post(t, `{"type":"demo:echo","payload":{"sleep":"never"},"queue":"high"}`); res.status != http.StatusUnprocessableEntity {
			t.Fatalf("a bad payload: %d", res.status)
		}
	}
	f.redis.Stop()
	if res := f.post(t, `{"type":"demo:echo","payload":{"arg":"x"},"queue":"high"}`); res.status != http.StatusServiceUnavailable {
		t.Fatalf("submit with Redis down: %d", res.status)
	}
	for outcome, want := range map[string]float64{"ok": 1, "rejected": 2, "error": 1} {
		c, err := f.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := -1.0
		for _, fam := range c {
			if fam.GetName() != "taskstack_tasks_enqueued_total" {
				continue
			}
			for _, m := range fam.GetMetric() {
				l := map[string]string{}
				for _, p := range m.GetLabel() {
					l[p.GetName()] = p.GetValue()
				}
				if l["type"] == "demo:echo" && l["queue"] == "high" && l["outcome"] == outcome {
					got = m.GetCounter().GetValue()
				}
			}
		}
		if got != want {
			t.Errorf(`taskstack_tasks_enqueued_total{type="demo:echo",queue="high",outcome=%q} = %v, want %v`, outcome, got, want)
		}
	}
}

// TestEventStreamAnnouncesItsRetry: a stream tells the browser to come back
// after three intervals (1 s by default) when it is cut.
func TestEventStreamAnnouncesItsRetry(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), testsupport.RequestTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+"/api/v1/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "retry: 3000\n" {
		t.Errorf("the stream's first line %q (%v), want retry: 3000", line, err)
	}
}

// TestPagePrevLink: the page's first page of tasks links on to the second
// and not back; the second links back to the first.
func TestPagePrevLink(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for range 3 {
		if res := f.post(t, `{"type":"demo:echo","payload":{"arg":"x"},"queue":"low"}`); res.status != http.StatusAccepted {
			t.Fatalf("submit: %d", res.status)
		}
	}
	prev := regexp.MustCompile(`<a rel="prev" id="prev" href="([^"]*)"( hidden)?>`)
	link := func(path string) []string {
		t.Helper()
		m := prev.FindStringSubmatch(string(f.do(t, http.MethodGet, path, nil).body))
		if m == nil {
			t.Fatalf("GET %s: no prev link element", path)
		}
		return m
	}
	if m := link("/?page_size=1"); m[2] != " hidden" {
		t.Errorf("the first page links back: %q", m[0])
	}
	next := regexp.MustCompile(`<a rel="next" id="next" href="([^"]*)">Older`).FindStringSubmatch(string(f.do(t, http.MethodGet, "/?page_size=1", nil).body))
	if next == nil || !strings.Contains(next[1], "page=2") {
		t.Errorf("the first page's link on: %q, want to page 2", next)
	}
	if m := link("/?page=2&page_size=1"); m[2] != "" || !strings.Contains(m[1], "page=1") {
		t.Errorf("the second page's link back: %q, want to page 1", m[0])
	}
}

// TestWhoIsSignedIn: the page names the user of a token or a session, and
// offers to log out only from a session; an open server names nobody.
func TestWhoIsSignedIn(t *testing.T) {
	t.Parallel()
	open := setup(t)
	if body := string(open.do(t, http.MethodGet, "/", nil).body); strings.Contains(body, `id="signed-in"`) {
		t.Error("an open server names a user")
	}
	f := setupAuth(t, nil)
	body := string(f.do(t, http.MethodGet, "/", nil, f.as("reader")...).body)
	if !strings.Contains(body, "Signed in as <strong>reader</strong>") || strings.Contains(body, `id="logout"`) {
		t.Errorf("with a bearer token: want the user named and no log-out button:\n%s", body)
	}
}

// TestPageSearchMoreLink: the page's search links to more matches while
// there are more, with the cursor.
func TestPageSearchMoreLink(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for range 3 {
		if res := f.post(t, `{"type":"demo:fail","payload":{"message":"x"},"process_in":"1h"}`); res.status != http.StatusAccepted {
			t.Fatalf("submit: %d", res.status)
		}
	}
	more := regexp.MustCompile(`<a rel="next" id="next" href="([^"]*)"( hidden)?>More matches`)
	m := more.FindStringSubmatch(string(f.do(t, http.MethodGet, "/?type=demo:fail&page_size=1", nil).body))
	if m == nil || m[2] != "" || !strings.Contains(m[1], "cursor=") {
		t.Errorf("a search with more matches: link %q, want one with a cursor", m)
	}
}

// TestPageTitleSaysWhenNotSubmitted: the page's title says a submission
// failed, so that a screen reader announces it; otherwise it is Tasks.
func TestPageTitleSaysWhenNotSubmitted(t *testing.T) {
	t.Parallel()
	f := setup(t)
	if body := string(f.do(t, http.MethodGet, "/", nil).body); !strings.Contains(body, "<title>Tasks · taskstack</title>") {
		t.Error("the page's title is not Tasks")
	}
	form := url.Values{"type": {"demo:echo"}, "arg": {"x"}, "sleep": {"forever"}, "queue": {"default"}}
	res := f.do(t, http.MethodPost, "/tasks", strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	if res.status != http.StatusUnprocessableEntity || !strings.Contains(string(res.body), "<title>Error: task not submitted · taskstack</title>") {
		t.Errorf("a refused submission: %d, want 422 titled Error: task not submitted", res.status)
	}
}

// TestPageShowsTheTaskJustSubmitted: the list a viewer sees is a snapshot
// that may predate a submission; the task just submitted is put on top,
// marked, and the status line links to it.
func TestPageShowsTheTaskJustSubmitted(t *testing.T) {
	t.Parallel()
	r := testsupport.StartRedis(t)
	rc := redis.NewClient(&redis.Options{Addr: r.Addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rc.Close() })
	app, _ := newApp(t, rc, web.Options{LiveInterval: time.Minute, Registry: prometheus.NewRegistry()})
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	f := &fixture{srv: srv}
	f.post(t, `{"type":"demo:echo","payload":{"arg":"earlier"},"queue":"low"}`)
	f.do(t, http.MethodGet, "/", nil) // the snapshot: the earlier task only
	res := f.post(t, `{"type":"demo:echo","payload":{"arg":"x"},"queue":"high"}`)
	id, _ := res.json(t)["id"].(string)
	body := string(f.do(t, http.MethodGet, "/?submitted="+id, nil).body)
	for _, want := range []string{`<tr data-id="` + id + `" data-queue="high" data-state="pending" class="mine">`, `Task <a href="/tasks/high/` + id + `">` + id + `</a> submitted.`} {
		if !strings.Contains(body, want) {
			t.Errorf("the page after submitting lacks %s", want)
		}
	}
}

// TestPageEmptyListAndRefresh: an empty list says whether a filter hides
// the tasks; the no-JavaScript refresh link goes back to the list, not to
// the form's POST.
func TestPageEmptyListAndRefresh(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for path, want := range map[string]string{
		"/":                "No tasks yet. Submit one above.",
		"/?state=retry":    "No tasks match this filter.",
		"/?queue=high":     "No tasks match this filter.",
		"/?type=demo:fail": "No tasks match this filter.",
	} {
		if body := string(f.do(t, http.MethodGet, path, nil).body); !strings.Contains(body, want) {
			t.Errorf("GET %s: the empty list does not say %q", path, want)
		}
	}
	form := url.Values{"type": {"demo:echo"}, "arg": {"x"}, "sleep": {"forever"}, "queue": {"default"}}
	res := f.do(t, http.MethodPost, "/tasks", strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	if !strings.Contains(string(res.body), `<a href="/">Refresh</a>`) {
		t.Errorf("the form's answer: the refresh link does not go to /")
	}
}

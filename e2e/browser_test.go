package e2e

// Browser tests: headless Chromium (Debian's chromium package, installed by
// `make test`) driven by chromedp against the real app and worker binaries
// and a real redis-server. They prove what a person sees: a task submitted
// from the page moves pending/active → completed without a reload, field
// errors appear next to their field and enqueue nothing, the dashboard links
// go where configured, the page works by keyboard and on a narrow screen,
// the form works with JavaScript off, and every task state renders.
//
// TASKSTACK_SCREENSHOT=docs/page.png go test ./e2e -run TestBrowserTaskStates
// also writes the README's screenshot (a path relative to the repo root).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"taskstack/internal/testsupport"
)

const (
	browserMonitorURL = "http://monitor.example.test:8081/"
	browserGrafanaURL = "http://grafana.example.test:3000/"
	// browserTestTimeout bounds each browser test as a whole; every wait
	// inside it has its own, shorter bound.
	browserTestTimeout = 90 * time.Second
)

// browserStack is a Redis, the worker and the app, as one person's
// deployment would run them.
type browserStack struct {
	url   string
	redis *testsupport.Redis
}

func startBrowserStack(t *testing.T, workerEnv map[string]string, appEnv ...map[string]string) *browserStack {
	t.Helper()
	appBin := testsupport.BuildBinary(t, "app")
	workerBin := testsupport.BuildBinary(t, "worker")
	r := testsupport.StartRedis(t)
	appAddr := fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t))
	adminAddr := fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t))
	// No canary: its tasks count in the queue table, and one that falls
	// due while a test holds the only slot stays pending there, so the
	// counts a test reads would depend on the clock (the canary has its
	// own tests).
	wenv := map[string]string{"REDIS_URL": r.URL, "LOG_LEVEL": "debug", "WORKER_ADMIN_ADDR": adminAddr, "CANARY_INTERVAL": "0"}
	for k, v := range workerEnv {
		wenv[k] = v
	}
	worker := testsupport.StartProcess(t, workerBin, wenv)
	aenv := map[string]string{
		"REDIS_URL": r.URL, "LOG_LEVEL": "debug", "APP_ADDR": appAddr, "APP_ADMIN_ADDR": fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t)),
		"APP_MONITOR_URL": browserMonitorURL, "APP_GRAFANA_URL": browserGrafanaURL,
	}
	for _, e := range appEnv {
		for k, v := range e {
			aenv[k] = v
		}
	}
	app := testsupport.StartProcess(t, appBin, aenv)
	testsupport.WaitHTTP(t, worker, "http://"+adminAddr+"/healthz", 30*time.Second)
	testsupport.WaitHTTP(t, app, "http://"+appAddr+"/healthz", 30*time.Second)
	return &browserStack{url: "http://" + appAddr, redis: r}
}

// enqueue submits a task through the JSON API and returns its ID.
func (s *browserStack) enqueue(t *testing.T, body map[string]any) string {
	t.Helper()
	b, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/api/v1/tasks", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := testsupport.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("POST /api/v1/tasks: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/v1/tasks %s: %d %s", b, resp.StatusCode, raw)
	}
	var c struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &c); err != nil || c.ID == "" {
		t.Fatalf("POST /api/v1/tasks: bad body %s (%v)", raw, err)
	}
	return c.ID
}

// taskKeys lists the users' tasks stored in Redis, in any state: asynq
// keeps one hash per task at asynq:{<queue>}:t:<id>.
func (s *browserStack) taskKeys(t *testing.T) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	keys, err := s.redis.Client(t).Keys(ctx, "asynq:{*}:t:*").Result()
	if err != nil {
		t.Fatalf("redis KEYS: %v", err)
	}
	// The worker's canary tasks (canary:<queue>:<unix>) are not users'.
	return slices.DeleteFunc(keys, func(k string) bool { return strings.Contains(k, ":t:canary:") })
}

// browserTab is one Chromium tab and what its console said.
type browserTab struct {
	ctx context.Context

	mu       sync.Mutex
	problems []string
	// expected are console texts a test provokes on purpose, such as the
	// browser's note that a request answered 422.
	expected []string
}

// expect tolerates console errors that contain text.
func (b *browserTab) expect(text string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expected = append(b.expected, text)
}

type browserOption func(*browserOptions)

type browserOptions struct {
	width, height int64
	noJS          bool
}

func browserSize(w, h int64) browserOption {
	return func(o *browserOptions) { o.width, o.height = w, h }
}

func browserNoJS(o *browserOptions) { o.noJS = true }

// newBrowserTab starts a headless Chromium with a fresh profile and opens a
// tab. Console errors, uncaught exceptions and browser log errors (a
// failed request, a Content-Security-Policy violation) fail the test.
func newBrowserTab(t *testing.T, opts ...browserOption) *browserTab {
	t.Helper()
	o := browserOptions{width: 1280, height: 900}
	for _, f := range opts {
		f(&o)
	}
	ctx, cancel := context.WithTimeout(t.Context(), browserTestTimeout)
	t.Cleanup(cancel)
	var out bytes.Buffer
	var outMu sync.Mutex
	profile := t.TempDir()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(testsupport.LookPath(t, "chromium")),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root in CI containers
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(profile),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.WindowSize(int(o.width), int(o.height)),
		chromedp.CombinedOutput(browserLockedWriter{&outMu, &out}),
	)
	tab := &browserTab{}
	tabCtx, cancelTab := chromedp.NewContext(allocCtx,
		chromedp.WithLogf(t.Logf),
		chromedp.WithListener(tab.listen),
	)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		removeSingletonDir(t, profile)
		if t.Failed() {
			outMu.Lock()
			var lines []string
			for _, l := range strings.Split(out.String(), "\n") {
				if !strings.Contains(l, "dbus") { // no D-Bus in a container: noise
					lines = append(lines, l)
				}
			}
			outMu.Unlock()
			t.Logf("--- chromium output:\n%s", strings.Join(lines, "\n"))
		}
	})
	tab.ctx = tabCtx
	actions := []chromedp.Action[chromedp.Void]{chromedp.EmulateViewport(o.width, o.height)}
	if err := chromedp.Do(tabCtx, actions...); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if o.noJS {
		if _, err := chromedp.Call(tabCtx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
			t.Fatalf("disable JavaScript: %v", err)
		}
	}
	t.Cleanup(func() {
		tab.mu.Lock()
		defer tab.mu.Unlock()
		for _, p := range tab.problems {
			t.Errorf("browser console: %s", p)
		}
	})
	return tab
}

// removeSingletonDir removes the directory Chromium made for its singleton
// socket (org.chromium.Chromium.XXXXXX under TMPDIR, linked from the
// profile as SingletonSocket), which it leaves behind when it is killed, as
// chromedp stops it. Pointing Chromium's TMPDIR into t.TempDir() instead
// makes the socket's path too long for a Unix socket under a deep TMPDIR.
func removeSingletonDir(t *testing.T, profile string) {
	t.Helper()
	target, err := os.Readlink(filepath.Join(profile, "SingletonSocket"))
	if err != nil {
		return // Chromium never got that far
	}
	if dir := filepath.Dir(target); strings.HasPrefix(filepath.Base(dir), "org.chromium.Chromium.") {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove Chromium's singleton directory: %v", err)
		}
	}
}

type browserLockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w browserLockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(b)
}

// listen runs in the tab's event loop: record, return fast.
func (b *browserTab) listen(ev any) {
	var p string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		p = "uncaught exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			p += " " + ev.ExceptionDetails.Exception.Description
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			p = "console." + string(ev.Type)
			for _, a := range ev.Args {
				p += " " + string(a.Value) + a.Description
			}
		}
	case *cdplog.EventEntryAdded:
		if ev.Entry.Level == cdplog.EntryLevelError {
			p = string(ev.Entry.Source) + ": " + ev.Entry.Text + " " + ev.Entry.URL
		}
	}
	if p == "" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.expected {
		if strings.Contains(p, e) {
			return
		}
	}
	b.problems = append(b.problems, p)
}

// do runs actions, failing the test with what was being done.
func (b *browserTab) do(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page.
func browserEval[T any](t *testing.T, b *browserTab, expr string) T {
	t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript predicate until it is truthy or timeout passes,
// then fails with what was awaited and, to help, what the page showed.
func (b *browserTab) waitFor(t *testing.T, what, predicate string, timeout time.Duration) {
	t.Helper()
	_, err := chromedp.Run(b.ctx, chromedp.Poll[chromedp.Void](predicate,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		body, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.querySelector("main") ? document.querySelector("main").innerText : document.body.innerText`))
		t.Fatalf("waiting %s for %s: %v\npage text:\n%s", timeout, what, err, body)
	}
}

func (b *browserTab) open(t *testing.T, url string) {
	t.Helper()
	b.do(t, "open "+url, chromedp.Navigate(url))
	b.waitFor(t, "the page to load", `document.readyState === "complete"`, 10*time.Second)
}

// fill replaces an input's value by typing, as a person would.
func (b *browserTab) fill(t *testing.T, id, value string) {
	t.Helper()
	b.do(t, "fill #"+id,
		// (SetValue refuses an empty value.)
		chromedp.Evaluate[chromedp.Void](`document.getElementById(`+jsString(id)+`).value = ""`),
		chromedp.SendKeys(chromedp.ID(id), value))
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestBrowserSubmitLive: a task submitted from the page shows up at once as
// pending or active and turns completed with its result, with no reload; a
// focused link keeps focus while the list updates around it; the end is
// announced in the one live region; the detail view updates live too.
func TestBrowserSubmitLive(t *testing.T) {
	t.Parallel()
	s := startBrowserStack(t, nil)
	b := newBrowserTab(t)
	b.open(t, s.url+"/")

	// One live region on the page: the submit status. The task table must
	// not be one, or a screen reader would read it every second.
	regions := browserEval[[]string](t, b, `[...document.querySelectorAll("[aria-live], [role=status], [role=alert], [role=log]")].map(e => e.id)`)
	if !slices.Equal(regions, []string{"submit-status"}) {
		t.Errorf("live regions = %q, want only submit-status", regions)
	}

	// A marker that a reload would wipe, and a record of every state the
	// page shows for each row (a MutationObserver sees each DOM change, so
	// a state shown between two test polls is not missed).
	browserEval[chromedp.Void](t, b, `(() => {
		window.__noReload = "still here";
		window.__states = {};
		const record = () => {
			for (const tr of document.querySelectorAll("#task-rows tr[data-id]")) {
				const seen = (window.__states[tr.dataset.id] ||= []);
				if (seen[seen.length - 1] !== tr.dataset.state) seen.push(tr.dataset.state);
			}
		};
		new MutationObserver(record).observe(document.getElementById("task-rows"),
			{ subtree: true, childList: true, attributes: true, characterData: true });
	})()`)

	arg := fmt.Sprintf("browser-%d", time.Now().UnixNano())
	b.fill(t, "arg", arg)
	// Long enough that a busy machine's first live update (every second)
	// still sees the task before it completes.
	b.fill(t, "sleep", "4s")
	b.do(t, "choose the high queue", chromedp.SetValue(chromedp.ID("queue"), "high"))
	b.do(t, "submit", chromedp.Click(chromedp.ID("submit")))

	b.waitFor(t, "the submit status to name the task", `document.querySelector("#submit-status a") !== null`, 10*time.Second)
	id := browserEval[string](t, b, `document.querySelector("#submit-status a").textContent`)
	row := `document.querySelector('#task-rows tr[data-id=` + jsString(id) + `]')`
	b.waitFor(t, "the task's row", row+` !== null`, 5*time.Second)

	// Keep keyboard focus on the new row's link from now on.
	b.do(t, "focus the task link", chromedp.Focus(chromedp.CSS(`#task-rows tr[data-id="`+id+`"] a`)))

	want := "prefix___" + arg
	b.waitFor(t, "the row to show completed with "+want,
		row+`.dataset.state === "completed" && `+row+`.querySelector(".result").textContent === `+jsString(want), 20*time.Second)

	states := browserEval[[]string](t, b, `window.__states[`+jsString(id)+`] || []`)
	if len(states) < 2 || (states[0] != "pending" && states[0] != "active") || states[len(states)-1] != "completed" {
		t.Errorf("states shown for the task = %q, want pending or active first, completed last", states)
	}
	for _, st := range states {
		if st != "pending" && st != "active" && st != "completed" {
			t.Errorf("the task was shown as %q (states %q)", st, states)
		}
	}
	if got := browserEval[string](t, b, `window.__noReload || ""`); got != "still here" {
		t.Fatalf("the page was reloaded (marker %q)", got)
	}
	if got := browserEval[string](t, b, `document.getElementById("queue").value + "|" + document.querySelector('#task-rows tr[data-id=`+jsString(id)+`] td[data-label=Queue]').textContent`); got != "high|high" {
		t.Errorf("queue select|row queue = %q, want high|high", got)
	}

	// The end was announced in the live region, with the result.
	b.waitFor(t, "the completion to be announced", `document.getElementById("submit-status").textContent.includes(`+jsString("Task completed: "+want)+`)`, 5*time.Second)

	// Focus survived every refresh, and survives a new task being inserted
	// above the focused row.
	focused := `document.activeElement && document.activeElement.closest("tr") && document.activeElement.closest("tr").dataset.id`
	if got := browserEval[string](t, b, focused+` || ""`); got != id {
		t.Fatalf("focus after the updates is on %q, want the link of task %s", got, id)
	}
	other := s.enqueue(t, map[string]any{"type": "demo:echo", "payload": map[string]any{"arg": "other", "sleep": "0s"}})
	b.waitFor(t, "the second task's row", `document.querySelector('#task-rows tr[data-id=`+jsString(other)+`]') !== null`, 5*time.Second)
	b.waitFor(t, "the second task to complete", `document.querySelector('#task-rows tr[data-id=`+jsString(other)+`]').dataset.state === "completed"`, 10*time.Second)
	if got := browserEval[string](t, b, focused+` || ""`); got != id {
		t.Errorf("focus after a new row was added is on %q, want the link of task %s", got, id)
	}
	if got := browserEval[string](t, b, `window.__noReload || ""`); got != "still here" {
		t.Fatalf("the page was reloaded (marker %q)", got)
	}

	// The detail view follows a running task live too.
	slow := s.enqueue(t, map[string]any{"type": "demo:echo", "payload": map[string]any{"arg": "detail", "sleep": "2s"}})
	b.open(t, s.url+"/tasks/default/"+slow)
	browserEval[chromedp.Void](t, b, `window.__noReload = "still here"`)
	if st := browserEval[string](t, b, `document.getElementById("detail-state").textContent`); st != "pending" && st != "active" {
		t.Errorf("detail page first shows %q, want pending or active", st)
	}
	b.waitFor(t, "the detail view to show completed with prefix___detail",
		`document.getElementById("detail-state").textContent === "completed" && document.getElementById("detail-result").textContent === "prefix___detail" && document.getElementById("detail-completed_at").textContent.endsWith(" UTC")`, 15*time.Second)
	if got := browserEval[string](t, b, `window.__noReload || ""`); got != "still here" {
		t.Fatalf("the detail page was reloaded (marker %q)", got)
	}
}

// TestBrowserInvalidSleep: a bad sleep is explained next to the sleep
// field, focus goes to it, and nothing reaches Redis; fixing it clears the
// message.
func TestBrowserInvalidSleep(t *testing.T) {
	t.Parallel()
	s := startBrowserStack(t, nil)
	b := newBrowserTab(t)
	b.expect("status of 422") // the refused POST /api/v1/tasks
	b.open(t, s.url+"/")
	browserEval[chromedp.Void](t, b, `window.__noReload = "still here"`)

	for _, c := range []struct{ sleep, want string }{
		{"soon", `Sleep "soon" is not a duration`},
		{"11m", "Sleep must be between 0s and 10m"},
	} {
		b.do(t, "clear the last message", chromedp.Evaluate[chromedp.Void](`document.getElementById("sleep-error").textContent = ""`))
		b.fill(t, "arg", "never-enqueued")
		b.fill(t, "sleep", c.sleep)
		b.do(t, "submit", chromedp.Click(chromedp.ID("submit")))
		b.waitFor(t, "a message next to the sleep field for "+c.sleep, `document.getElementById("sleep-error").textContent !== ""`, 10*time.Second)
		msg := browserEval[string](t, b, `document.getElementById("sleep-error").textContent`)
		if !strings.Contains(msg, c.want) {
			t.Errorf("sleep %q: message %q, want it to contain %q", c.sleep, msg, c.want)
		}
		// The message is the sleep field's description, the field is marked
		// invalid and has focus, and no other field complains.
		got := browserEval[string](t, b, `[
			document.getElementById("sleep").getAttribute("aria-describedby"),
			document.getElementById("sleep").getAttribute("aria-invalid"),
			document.activeElement.id,
			document.getElementById("arg-error").textContent + document.getElementById("queue-error").textContent + document.getElementById("form-error").textContent,
			getComputedStyle(document.getElementById("sleep-error")).display,
		].join("|")`)
		if want := "sleep-hint sleep-error|true|sleep||block"; got != want {
			t.Errorf("sleep %q: describedby|invalid|focus|other errors|display = %q, want %q", c.sleep, got, want)
		}
		if st := browserEval[string](t, b, `document.getElementById("submit-status").textContent`); !strings.Contains(st, "not submitted") {
			t.Errorf("sleep %q: status %q, want it to say the task was not submitted", c.sleep, st)
		}
		if keys := s.taskKeys(t); len(keys) != 0 {
			t.Fatalf("sleep %q: tasks in Redis after a refused submit: %q", c.sleep, keys)
		}
		if n := browserEval[int](t, b, `document.querySelectorAll("#task-rows tr[data-id]").length`); n != 0 {
			t.Errorf("sleep %q: %d task rows after a refused submit", c.sleep, n)
		}
	}

	// Fixing the value clears the message and submits.
	b.fill(t, "sleep", "0s")
	b.do(t, "submit", chromedp.Click(chromedp.ID("submit")))
	b.waitFor(t, "the task to be submitted", `document.querySelector("#submit-status a") !== null`, 10*time.Second)
	if got := browserEval[string](t, b, `document.getElementById("sleep-error").textContent + "|" + document.getElementById("sleep").hasAttribute("aria-invalid")`); got != "|false" {
		t.Errorf("after a valid submit: sleep error|invalid = %q, want |false", got)
	}
	if keys := s.taskKeys(t); len(keys) != 1 {
		t.Errorf("tasks in Redis after one valid submit: %q", keys)
	}
	if got := browserEval[string](t, b, `window.__noReload || ""`); got != "still here" {
		t.Fatalf("the page was reloaded (marker %q)", got)
	}
}

// TestBrowserLinksAndAccessibility: the dashboard links point where
// configured; every control has a label; the keyboard reaches the skip
// link with a visible focus ring and submits the form with Enter; on a
// phone-sized screen nothing scrolls sideways.
func TestBrowserLinksAndAccessibility(t *testing.T) {
	t.Parallel()
	s := startBrowserStack(t, nil)
	b := newBrowserTab(t)
	b.open(t, s.url+"/")

	for id, want := range map[string]string{"monitor-link": browserMonitorURL, "grafana-link": browserGrafanaURL} {
		got := browserEval[string](t, b, `document.getElementById(`+jsString(id)+`).getAttribute("href")`)
		if got != want {
			t.Errorf("#%s href = %q, want %q", id, got, want)
		}
	}

	unlabelled := browserEval[[]string](t, b, `[...document.querySelectorAll("input, select, textarea, button")]
		.filter(e => !(e.labels && e.labels.length) && !e.getAttribute("aria-label") && !e.textContent.trim())
		.map(e => e.outerHTML)`)
	if len(unlabelled) > 0 {
		t.Errorf("controls without a label: %q", unlabelled)
	}

	// A short sleep for the keyboard submission below (set without focus).
	b.do(t, "set sleep", chromedp.SetValue(chromedp.ID("sleep"), "0s"))

	// Keyboard: the first Tab lands on the skip link, with a visible ring.
	b.do(t, "press Tab", chromedp.KeyEvent(kb.Tab))
	got := browserEval[string](t, b, `(() => {
		const e = document.activeElement, cs = getComputedStyle(e);
		return e.className + "|" + cs.outlineStyle + "|" + (parseFloat(cs.outlineWidth) > 0) + "|" + (e.getBoundingClientRect().left >= 0);
	})()`)
	if got != "skip|solid|true|true" {
		t.Errorf("after one Tab: class|outline|width>0|on screen = %q, want skip|solid|true|true", got)
	}
	// Tab to the argument field, type, press Enter: the form submits.
	for range 40 {
		if browserEval[string](t, b, `document.activeElement.id`) == "arg" {
			break
		}
		b.do(t, "press Tab", chromedp.KeyEvent(kb.Tab))
	}
	if id := browserEval[string](t, b, `document.activeElement.id`); id != "arg" {
		t.Fatalf("Tab never reached the argument field (focus on %q)", id)
	}
	if ring := browserEval[string](t, b, `getComputedStyle(document.activeElement).outlineStyle`); ring == "none" {
		t.Errorf("the focused argument field shows no focus ring")
	}
	b.do(t, "type and press Enter", chromedp.KeyEvent("keyboard"), chromedp.KeyEvent(kb.Enter))
	b.waitFor(t, "the keyboard submission's row to complete", `[...document.querySelectorAll("#task-rows tr[data-state=completed] .result")].some(e => e.textContent === "prefix___keyboard")`, 15*time.Second)

	// Phone-sized screen: no sideways scrolling, rows become labelled cards.
	b.do(t, "emulate a phone", chromedp.EmulateViewport(360, 740))
	b.open(t, s.url+"/")
	got = browserEval[string](t, b, `(() => {
		const td = document.querySelector("#task-rows td[data-label=Result]");
		return (document.documentElement.scrollWidth <= window.innerWidth) + "|" + getComputedStyle(td).display + "|" + getComputedStyle(td, "::before").content;
	})()`)
	if got != `true|grid|"Result"` {
		t.Errorf("on a 360px screen: fits|cell display|cell label = %q, want true|grid|\"Result\"", got)
	}
	b.do(t, "back to a desktop", chromedp.EmulateViewport(1280, 900))
}

// TestBrowserNoJavaScript: with JavaScript off the form still submits
// (POST, then a redirect to a page that shows the task) and a bad value is
// explained next to its field.
func TestBrowserNoJavaScript(t *testing.T) {
	t.Parallel()
	s := startBrowserStack(t, nil)
	b := newBrowserTab(t, browserNoJS)
	b.expect("status of 422") // the refused POST /tasks
	b.do(t, "open the page", chromedp.Navigate(s.url+"/"))

	text := func(sel string) string {
		t.Helper()
		// Read from the DOM through the protocol: page scripts are off.
		v, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel), chromedp.AtLeast(0)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.TrimSpace(v)
	}
	if got := text("#live"); got != "" {
		t.Errorf("the live indicator shows %q without JavaScript", got)
	}

	b.do(t, "fill the form",
		chromedp.SendKeys(chromedp.ID("arg"), "nojs"),
		chromedp.SetValue(chromedp.ID("sleep"), "0s"),
	)
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.ID("submit")))
	if err != nil {
		t.Fatalf("submit without JavaScript: %v", err)
	}
	loc, _ := chromedp.Run(b.ctx, chromedp.Location())
	if resp.Status != http.StatusOK || !strings.Contains(loc, "/?submitted=") {
		t.Fatalf("after the POST: status %d at %s, want 200 at /?submitted=<id>", resp.Status, loc)
	}
	id := loc[strings.Index(loc, "submitted=")+len("submitted="):]
	if got := text("#submit-status"); got != "Task "+id+" submitted." {
		t.Errorf("status = %q, want %q", got, "Task "+id+" submitted.")
	}
	if got := text(`#task-rows tr.mine[data-id="` + id + `"] td[data-label=Task] a`); got != id {
		t.Errorf("the submitted task's highlighted row shows %q, want %q", got, id)
	}

	// A bad value: 422, the message next to the field and in a summary,
	// the field focused on load.
	b.do(t, "fill a bad sleep", chromedp.SetValue(chromedp.ID("sleep"), "soon"))
	resp, err = chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.ID("submit")))
	if err != nil {
		t.Fatalf("submit a bad sleep without JavaScript: %v", err)
	}
	if resp.Status != http.StatusUnprocessableEntity {
		t.Errorf("bad sleep: status %d, want 422", resp.Status)
	}
	if got := text("#sleep-error"); !strings.Contains(got, `Sleep "soon" is not a duration`) {
		t.Errorf("#sleep-error = %q", got)
	}
	if got := text("#error-summary"); !strings.Contains(got, "The task was not submitted") {
		t.Errorf("#error-summary = %q", got)
	}
	if n, err := chromedp.Run(b.ctx, chromedp.Nodes(chromedp.CSS(`#sleep[autofocus][aria-invalid="true"]`), chromedp.AtLeast(0))); err != nil || len(n) != 1 {
		t.Errorf("the sleep field is not marked invalid and autofocused (%d nodes, %v)", len(n), err)
	}
	if keys := s.taskKeys(t); len(keys) != 1 {
		t.Errorf("tasks in Redis = %q, want only the valid one", keys)
	}
}

// TestBrowserTaskStates renders tasks in every state a person meets:
// completed with its result, active, pending behind it, scheduled, failed
// and waiting for a retry, and archived with its error. With
// TASKSTACK_SCREENSHOT set it writes the README's screenshot.
func TestBrowserTaskStates(t *testing.T) {
	t.Parallel()
	// One slot, so a long task keeps the next one pending.
	s := startBrowserStack(t, map[string]string{"WORKER_CONCURRENCY": "1"})
	echo := func(arg, sleep string, extra map[string]any) string {
		body := map[string]any{"type": "demo:echo", "payload": map[string]any{"arg": arg, "sleep": sleep}}
		for k, v := range extra {
			body[k] = v
		}
		return s.enqueue(t, body)
	}
	echo("hello", "0s", nil)
	echo("report-42", "0s", map[string]any{"queue": "high"})
	s.enqueue(t, map[string]any{"type": "demo:fail", "payload": map[string]any{"message": "disk full"}})
	retrying := s.enqueue(t, map[string]any{"type": "demo:fail", "payload": map[string]any{"message": "upstream timed out"}, "max_retry": 3})

	b := newBrowserTab(t, browserSize(1200, 900))
	b.open(t, s.url+"/")
	rows := `[...document.querySelectorAll("#task-rows tr[data-id]")]`
	b.waitFor(t, "two completed, one archived and one retry task",
		rows+`.filter(r => r.dataset.state === "completed").length === 2 && `+rows+`.some(r => r.dataset.state === "archived") && `+rows+`.some(r => r.dataset.state === "retry")`, 20*time.Second)
	echo("nightly-export", "5m", nil)
	b.waitFor(t, "the long task to be active", rows+`.some(r => r.dataset.state === "active")`, 10*time.Second)
	echo("thumbnail-7", "3s", map[string]any{"queue": "low"})
	echo("newsletter", "1s", map[string]any{"process_in": "1h"})

	b.waitFor(t, "every state on the page",
		`["completed", "active", "pending", "scheduled", "retry", "archived"].every(s => document.querySelector("#task-rows tr[data-state=" + s + "] .state-" + s))`, 10*time.Second)
	got := browserEval[string](t, b, `[
		document.querySelector("#task-rows tr[data-state=archived] .result .err").textContent,
		document.querySelector("#task-rows tr[data-state=retry] .result .err").textContent,
		[...document.querySelectorAll("#task-rows tr[data-state=completed] .result samp")].map(e => e.textContent).sort().join(","),
		document.querySelector("#queues tr[data-queue=default] td:nth-of-type(2)").textContent,
		document.querySelector("#queues tr[data-queue=low] td:nth-of-type(1)").textContent,
	].join("|")`)
	if want := "demo:fail: disk full|demo:fail: upstream timed out|prefix___hello,prefix___report-42|1|1"; got != want {
		t.Errorf("archived error|retry error|results|default active|low pending = %q, want %q", got, want)
	}

	path := os.Getenv("TASKSTACK_SCREENSHOT")
	if !filepath.IsAbs(path) && path != "" {
		path = filepath.Join(testsupport.RepoRoot(t), path)
	}
	variant := func(suffix string) string {
		return strings.TrimSuffix(path, filepath.Ext(path)) + suffix + filepath.Ext(path)
	}

	// The detail view of the failing task: its error, retries, next try and
	// payload.
	b.open(t, s.url+"/tasks/low/"+retrying)
	got = browserEval[string](t, b, `["state", "error", "retried"].map(k => document.getElementById("detail-" + k).textContent).join("|") + "|" +
		document.getElementById("detail-next_process_at").textContent.endsWith(" UTC") + "|" + document.querySelector("pre").textContent.includes('"message": "upstream timed out"')`)
	if want := "retry|demo:fail: upstream timed out|1 of 3|true|true"; got != want {
		t.Errorf("retry task's detail view: state|error|retried|next run|payload = %q, want %q", got, want)
	}
	if path != "" {
		b.screenshot(t, variant("-task"))
	}
	b.open(t, s.url+"/")
	if path == "" {
		return
	}
	// A person's view: something typed in the form, the list settled.
	b.fill(t, "arg", "weekly-report")
	b.fill(t, "sleep", "30s")
	b.do(t, "blur", chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`))
	b.waitFor(t, "the list", `document.querySelectorAll("#task-rows tr[data-id]").length === 7`, 5*time.Second)
	b.screenshot(t, path)
	// And the same on a phone, next to it: page.png → page-narrow.png.
	b.do(t, "emulate a phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	b.waitFor(t, "the narrow layout", `getComputedStyle(document.querySelector("#task-rows td")).display === "grid"`, 5*time.Second)
	b.screenshot(t, variant("-narrow"))
}

func (b *browserTab) screenshot(t *testing.T, path string) {
	t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", path, len(png))
}

// liveUpdate submits a task from the page and waits for its row to go from
// pending or active to completed with its result, and returns how the page
// was kept live ("sse" or "poll").
func liveUpdate(t *testing.T, s *browserStack, b *browserTab) string {
	t.Helper()
	b.open(t, s.url+"/")
	browserEval[chromedp.Void](t, b, `(() => {
		window.__states = {};
		const record = () => {
			for (const tr of document.querySelectorAll("#task-rows tr[data-id]")) {
				const seen = (window.__states[tr.dataset.id] ||= []);
				if (seen[seen.length - 1] !== tr.dataset.state) seen.push(tr.dataset.state);
			}
		};
		new MutationObserver(record).observe(document.getElementById("task-rows"),
			{ subtree: true, childList: true, attributes: true, characterData: true });
	})()`)
	arg := fmt.Sprintf("live-%d", time.Now().UnixNano())
	b.fill(t, "arg", arg)
	b.fill(t, "sleep", "4s")
	b.do(t, "submit", chromedp.Click(chromedp.ID("submit")))
	b.waitFor(t, "the submit status to name the task", `document.querySelector("#submit-status a") !== null`, 10*time.Second)
	id := browserEval[string](t, b, `document.querySelector("#submit-status a").textContent`)
	row := `document.querySelector('#task-rows tr[data-id=` + jsString(id) + `]')`
	b.waitFor(t, "the row to show completed", row+` && `+row+`.dataset.state === "completed" && `+row+`.querySelector(".result").textContent === `+jsString("prefix___"+arg), 30*time.Second)
	states := browserEval[[]string](t, b, `window.__states[`+jsString(id)+`] || []`)
	if len(states) < 2 || (states[0] != "pending" && states[0] != "active") || states[len(states)-1] != "completed" {
		t.Errorf("states shown = %q, want pending or active first, completed last", states)
	}
	return browserEval[string](t, b, `window.__live || ""`)
}

// TestBrowserLiveOverEvents: the page follows a task from pending to
// completed through the server-sent events stream.
func TestBrowserLiveOverEvents(t *testing.T) {
	t.Parallel()
	s := startBrowserStack(t, nil)
	b := newBrowserTab(t)
	if mode := liveUpdate(t, s, b); mode != "sse" {
		t.Errorf("the page was kept live by %q, want server-sent events", mode)
	}
}

// TestBrowserLiveByPolling: with /api/v1/events blocked (a proxy that
// refuses streams), the page falls back to polling and still follows the
// task to its end.
func TestBrowserLiveByPolling(t *testing.T) {
	t.Parallel()
	s := startBrowserStack(t, nil)
	b := newBrowserTab(t)
	b.expect("api/v1/events") // the blocked request is logged by the browser
	b.expect("ERR_BLOCKED_BY_CLIENT")
	if _, err := chromedp.Call(b.ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(b.ctx, network.SetBlockedURLs, network.SetBlockedURLsParams{
		URLPatterns: []*network.BlockPattern{{URLPattern: s.url + "/api/v1/events*", Block: true}},
	}); err != nil {
		t.Fatal(err)
	}
	if mode := liveUpdate(t, s, b); mode != "poll" {
		t.Errorf("the page was kept live by %q, want polling", mode)
	}
}

// TestBrowserTaskTimeline: a task that fails once and then succeeds
// (demo:flaky) shows, live on its page, both attempts in its timeline and
// attempts table, and links to its trace through APP_TRACE_URL_TEMPLATE.
// With TASKSTACK_SCREENSHOT set it also writes <name>-timeline.png.
func TestBrowserTaskTimeline(t *testing.T) {
	t.Parallel()
	// The app exports its spans (sampled: every one), so the task carries a
	// sampled trace ID; the sink stands in for Jaeger.
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(sink.Close)
	s := startBrowserStack(t, nil, map[string]string{
		"APP_TRACE_URL_TEMPLATE":      "http://jaeger.example.test:16686/trace/{trace_id}",
		"OTEL_EXPORTER_OTLP_ENDPOINT": sink.URL, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "TRACE_SAMPLE_RATIO": "1",
	})
	id := s.enqueue(t, map[string]any{"type": "demo:flaky", "payload": map[string]any{"failures": 1}, "queue": "high"})

	b := newBrowserTab(t, browserSize(1100, 1100))
	b.open(t, s.url+"/tasks/high/"+id)
	events := `[...document.querySelectorAll("#timeline li")].map(li => li.dataset.event).join(",")`
	b.waitFor(t, "completed, with both attempts in the timeline",
		`document.getElementById("detail-state").textContent === "completed" && `+events+` === "enqueued,attempt_started,attempt_failed,attempt_started,attempt_succeeded,completed"`, 30*time.Second)
	got := browserEval[string](t, b, `[
		[...document.querySelectorAll("#timeline li .what")].map(e => e.textContent).join(","),
		document.querySelector("#timeline li[data-event=attempt_failed] samp.err").textContent,
		[...document.querySelectorAll("#attempt-rows tr")].map(r => r.querySelector("th").textContent + ":" + r.querySelector("td:nth-of-type(3)").textContent).join(","),
		document.getElementById("attempts-section").hidden,
		document.getElementById("detail-result").textContent,
		document.getElementById("detail-retries_left").textContent,
	].join("|")`)
	want := "Submitted,Attempt 1 started,Attempt 1 failed,Attempt 2 started,Attempt 2 succeeded,Completed|" +
		"demo:flaky: attempt 1 of the 1 that fail on purpose|1:demo:flaky: attempt 1 of the 1 that fail on purpose,2:succeeded|false|succeeded on attempt 2|—"
	if got != want {
		t.Errorf("timeline|first error|attempts|attempts hidden|result|retries left =\n %q\nwant\n %q", got, want)
	}
	link := browserEval[string](t, b, `(document.querySelector("#detail-trace a") || {}).href || ""`)
	if !regexp.MustCompile(`^http://jaeger\.example\.test:16686/trace/[0-9a-f]{32}$`).MatchString(link) {
		t.Errorf("trace link %q, want the template filled with a trace ID", link)
	}
	// A reload renders the same timeline on the server.
	b.open(t, s.url+"/tasks/high/"+id)
	if got := browserEval[string](t, b, events); got != "enqueued,attempt_started,attempt_failed,attempt_started,attempt_succeeded,completed" {
		t.Errorf("timeline as the server renders it: %s", got)
	}
	if path := os.Getenv("TASKSTACK_SCREENSHOT"); path != "" {
		if !filepath.IsAbs(path) {
			path = filepath.Join(testsupport.RepoRoot(t), path)
		}
		b.screenshot(t, strings.TrimSuffix(path, filepath.Ext(path))+"-timeline"+filepath.Ext(path))
	}
}

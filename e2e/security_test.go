package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protowire"

	"taskstack/internal/testsupport"
)

const (
	prodRedisPassword = "Zq8-long-random-redis-value"
	prodSessionKey    = "b7c1e0f29a4d8356e1f0a9c3"
)

// prodApp is the app binary in prod with a tokens file, behind a
// password-protected Redis.
type prodApp struct {
	redis     *testsupport.Redis
	proc      *testsupport.Process
	url       string
	adminURL  string
	tokens    map[string]string
	tokenFile string
}

// newToken runs `app token new` and returns the token and its file line.
func newToken(t *testing.T, name, scopes string) (string, string) {
	t.Helper()
	out, err := testsupport.Command(t, 30*time.Second, testsupport.BuildBinary(t, "app"), "token", "new", "--name", name, "--scopes", scopes).CombinedOutput()
	if err != nil {
		t.Fatalf("app token new: %v\n%s", err, out)
	}
	var tok, line string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(l, "tsk_"):
			tok = l
		case strings.HasPrefix(l, name+":"):
			line = l
		}
	}
	if tok == "" || line == "" || strings.Contains(line, tok) {
		t.Fatalf("app token new printed:\n%s", out)
	}
	return tok, line
}

func startProdApp(t *testing.T, extra map[string]string, redisOpts ...testsupport.RedisOption) *prodApp {
	t.Helper()
	a := &prodApp{tokens: map[string]string{}, tokenFile: filepath.Join(t.TempDir(), "tokens")}
	var lines []string
	for name, scopes := range map[string]string{"reader": "tasks:read", "writer": "tasks:read,tasks:write", "admin": "tasks:admin"} {
		tok, line := newToken(t, name, scopes)
		a.tokens[name] = tok
		lines = append(lines, line)
	}
	if err := os.WriteFile(a.tokenFile, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.redis = testsupport.StartRedis(t, append([]testsupport.RedisOption{testsupport.RedisPassword(prodRedisPassword)}, redisOpts...)...)
	addr, admin := testsupport.HeldPort(t), testsupport.HeldPort(t)
	testsupport.Release(t, addr)
	testsupport.Release(t, admin)
	env := map[string]string{
		"APP_ENV": "prod", "REDIS_URL": a.redis.URL, "REDIS_PASSWORD": prodRedisPassword,
		"APP_ADDR": addr, "APP_ADMIN_ADDR": admin, "APP_TOKENS_FILE": a.tokenFile, "APP_SESSION_KEY": prodSessionKey,
	}
	for k, v := range extra {
		env[k] = v
	}
	a.proc = testsupport.StartProcess(t, testsupport.BuildBinary(t, "app"), env)
	a.url, a.adminURL = "http://"+addr, "http://"+admin
	testsupport.WaitHTTP(t, a.proc, a.url+"/healthz", 30*time.Second)
	return a
}

type reply struct {
	status int
	header http.Header
	body   string
}

func call(t *testing.T, method, u, body string, headers ...string) reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(b)}
}

func (a *prodApp) bearer(name string) []string {
	if name == "" {
		return nil
	}
	if name == "wrong" {
		return []string{"Authorization", "Bearer tsk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}
	}
	return []string{"Authorization", "Bearer " + a.tokens[name]}
}

// TestProdAppExposesNothingWithoutAToken runs the app binary as
// production does and calls every route with no credential, a wrong one,
// a read-only one and an admin one; then rotates the tokens file.
func TestProdAppExposesNothingWithoutAToken(t *testing.T) {
	t.Parallel()
	a := startProdApp(t, nil)
	created := call(t, "POST", a.url+"/api/v1/tasks", `{"type":"demo:echo","payload":{"arg":"p","sleep":"5m"}}`, a.bearer("admin")...)
	if created.status != 202 {
		t.Fatalf("admin submit: %d %s", created.status, created.body)
	}
	self := created.header.Get("Location")
	id := self[strings.LastIndex(self, "/")+1:]
	type route struct {
		method, path, body string
		read, admin        int // what a reader and an admin get
	}
	routes := []route{
		{"GET", "/", "", 200, 200},
		{"GET", "/tasks/default/" + id, "", 200, 200},
		{"POST", "/tasks", "arg=x&sleep=0s&queue=low", 403, 303},
		{"POST", "/api/v1/tasks", `{"type":"demo:echo"}`, 403, 202},
		{"GET", "/api/v1/tasks", "", 200, 200},
		{"GET", "/api/v1/queues", "", 200, 200},
		{"GET", self, "", 200, 200},
		{"GET", "/finished_tasks", "", 200, 200},
		{"DELETE", self, "", 403, 204},
	}
	for _, rt := range routes {
		for _, who := range []string{"", "wrong", "reader", "admin"} {
			h := a.bearer(who)
			if strings.HasPrefix(rt.body, "arg=") {
				h = append(h, "Content-Type", "application/x-www-form-urlencoded")
			}
			got := call(t, rt.method, a.url+rt.path, rt.body, h...)
			want := map[string]int{"": 401, "wrong": 401, "reader": rt.read, "admin": rt.admin}[who]
			if who == "wrong" && got.status == 429 {
				want = 429 // the address used up its bad-credential budget
			}
			if got.status != want {
				t.Errorf("%s %s as %q = %d, want %d: %.150s", rt.method, rt.path, who, got.status, want, got.body)
			}
			if got.status >= 400 && got.status != 429 && strings.Contains(got.body, "prefix___") {
				t.Errorf("%s %s as %q leaks a result", rt.method, rt.path, who)
			}
		}
	}
	// Open: health for the orchestrator. /metrics is on the admin port only.
	for _, p := range []string{"/healthz", "/readyz", "/login", "/static/app.css"} {
		if got := call(t, "GET", a.url+p, ""); got.status != 200 {
			t.Errorf("GET %s = %d without a credential", p, got.status)
		}
	}
	if got := call(t, "GET", a.url+"/metrics", ""); got.status == 200 {
		t.Error("the public port serves /metrics")
	}
	if got := call(t, "GET", a.adminURL+"/metrics", ""); got.status != 200 || !strings.Contains(got.body, "taskstack_auth_failures_total") {
		t.Errorf("admin /metrics = %d", got.status)
	}

	// A person logs in; the cookie is Secure, HttpOnly and SameSite=Strict.
	login := call(t, "POST", a.url+"/login", url.Values{"token": {a.tokens["reader"]}, "next": {"/"}}.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	cookie := login.header.Get("Set-Cookie")
	if login.status != 303 || !containsAll(cookie, "taskstack_session=", "HttpOnly", "Secure", "SameSite=Strict", "Path=/") {
		t.Fatalf("login: %d, Set-Cookie %q", login.status, cookie)
	}
	sessionCookie := strings.SplitN(cookie, ";", 2)[0]
	if got := call(t, "GET", a.url+"/", "", "Cookie", sessionCookie); got.status != 200 || !strings.Contains(got.body, "Signed in as") {
		t.Errorf("the page with the session: %d", got.status)
	}

	// Rotation: replace the reader's token by a new one, no restart.
	tok2, line2 := newToken(t, "reader2", "tasks:read")
	raw, _ := os.ReadFile(a.tokenFile)
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if !strings.HasPrefix(l, "reader:") {
			keep = append(keep, l)
		}
	}
	tmp := a.tokenFile + ".new"
	if err := os.WriteFile(tmp, []byte(strings.Join(append(keep, line2), "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, a.tokenFile); err != nil { // as a Secret update swaps it
		t.Fatal(err)
	}
	start := time.Now()
	testsupport.Eventually(t, 20*time.Second, "the new token accepted", func() bool {
		return call(t, "GET", a.url+"/api/v1/queues", "", "Authorization", "Bearer "+tok2).status == 200
	})
	t.Logf("token rotation took effect after %s (the file is reread every 5s)", time.Since(start).Round(100*time.Millisecond))
	if got := call(t, "GET", a.url+"/api/v1/queues", "", a.bearer("reader")...); got.status != 401 && got.status != 429 {
		t.Errorf("the rotated-out token: %d", got.status)
	}
	if got := call(t, "GET", a.url+"/", "", "Cookie", sessionCookie); got.status != 401 && got.status != 429 {
		t.Errorf("the session of the rotated-out token: %d", got.status)
	}
	if out := a.proc.Output(); strings.Contains(out, a.tokens["reader"]) || strings.Contains(out, tok2) || strings.Contains(out, prodSessionKey) {
		t.Error("a token or the session key reached the log")
	}
}

// TestProdLimits: the rate limit gives 429 with Retry-After, and a queue
// at its pending cap gives 429.
func TestProdLimits(t *testing.T) {
	t.Parallel()
	a := startProdApp(t, map[string]string{"APP_RATE_LIMIT": "1", "APP_RATE_BURST": "4", "QUEUE_MAX_PENDING": "6"})
	var codes []int
	for range 8 {
		got := call(t, "POST", a.url+"/api/v1/tasks", `{"type":"demo:echo","queue":"high"}`, a.bearer("writer")...)
		codes = append(codes, got.status)
		if got.status == 429 && got.header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	accepted := 0
	for _, c := range codes {
		if c == 202 {
			accepted++
		}
	}
	if accepted < 4 || accepted > 5 || codes[len(codes)-1] != 429 {
		t.Errorf("codes %v: want the burst of 4 (maybe one refill) accepted, then 429", codes)
	}
	t.Logf("rate limit 1/s, burst 4: %d accepted, then 429 (codes %v)", accepted, codes)

	// The admin has its own budget: fill high to its cap of 6.
	var capCodes []int
	for range 6 {
		got := call(t, "POST", a.url+"/api/v1/tasks", `{"type":"demo:echo","queue":"high"}`, a.bearer("admin")...)
		capCodes = append(capCodes, got.status)
		time.Sleep(600 * time.Millisecond) // past the capacity reading's 500ms
	}
	if capCodes[len(capCodes)-1] != 429 || capCodes[0] != 202 {
		t.Errorf("pending cap 6 with %d already pending: codes %v, want 202 then 429", accepted, capCodes)
	}
	metrics := call(t, "GET", a.adminURL+"/metrics", "").body
	for _, want := range []string{`taskstack_tasks_rejected_total{reason="rate_limit"}`, `taskstack_tasks_rejected_total{reason="queue_full"}`} {
		if !strings.Contains(metrics, want) || strings.Contains(metrics, want+" 0\n") {
			t.Errorf("/metrics: %s not counted", want)
		}
	}
}

// TestFullRedisAnswers503: with a small maxmemory, submissions get 503
// with Retry-After before (or when) Redis says OOM, never 500; /readyz
// says so; error lines are sampled, not one per request.
func TestFullRedisAnswers503(t *testing.T) {
	t.Parallel()
	a := startProdApp(t, map[string]string{"APP_RATE_LIMIT": "0", "QUEUE_MAX_PENDING": "0"},
		testsupport.RedisArgs("--maxmemory", "3mb", "--maxmemory-policy", "noeviction"))
	arg := strings.Repeat("ü", 1000) // 2 KB of payload
	var counts sync.Map
	var total atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(20 * time.Second)
	for range 8 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				got := call(t, "POST", a.url+"/api/v1/tasks", `{"type":"demo:echo","payload":{"arg":"`+arg+`"}}`, a.bearer("writer")...)
				n, _ := counts.LoadOrStore(got.status, new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
				total.Add(1)
				if got.status == 503 {
					if got.header.Get("Retry-After") == "" {
						t.Error("503 without Retry-After")
					}
					if v, ok := counts.Load(503); ok && v.(*atomic.Int64).Load() > 200 {
						return
					}
				}
				if got.status >= 500 && got.status != 503 {
					t.Errorf("a full Redis gave %d: %s", got.status, got.body)
					return
				}
			}
		})
	}
	wg.Wait()
	summary := map[int]int64{}
	counts.Range(func(k, v any) bool { summary[k.(int)] = v.(*atomic.Int64).Load(); return true })
	t.Logf("submissions into a 3mb Redis: %v", summary)
	if summary[503] == 0 {
		t.Fatalf("Redis never filled up: %v", summary)
	}
	// Reads go on, and readiness says the store is full.
	if got := call(t, "GET", a.url+"/api/v1/queues", "", a.bearer("reader")...); got.status != 200 {
		t.Errorf("reads with Redis full: %d %s", got.status, got.body)
	}
	if got := call(t, "GET", a.url+"/readyz", ""); got.status != 503 {
		t.Errorf("/readyz with Redis full: %d", got.status)
	}
	if n := strings.Count(a.proc.Output(), `"level":"ERROR"`); n > 10 {
		t.Errorf("%d error lines for %d refused requests: they must be sampled", n, summary[503])
	}
}

// TestSilentRedisFailsReadinessInTime: a Redis that accepts connections and
// never answers fails /readyz within its 1 s timeout plus one second.
func TestSilentRedisFailsReadinessInTime(t *testing.T) {
	t.Parallel()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = silent.Close() })
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // read nothing, answer nothing
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	addr, admin := testsupport.HeldPort(t), testsupport.HeldPort(t)
	testsupport.Release(t, addr)
	testsupport.Release(t, admin)
	p := testsupport.StartProcess(t, testsupport.BuildBinary(t, "app"), map[string]string{
		"REDIS_URL": "redis://" + silent.Addr().String() + "/0", "APP_ADDR": addr, "APP_ADMIN_ADDR": admin,
	})
	testsupport.WaitHTTP(t, p, "http://"+addr+"/healthz", 30*time.Second)
	for range 3 {
		start := time.Now()
		got := call(t, "GET", "http://"+addr+"/readyz", "")
		took := time.Since(start)
		t.Logf("/readyz against a silent Redis: %d in %s", got.status, took.Round(time.Millisecond))
		if got.status != 503 || took > 2*time.Second {
			t.Errorf("/readyz = %d after %s; want 503 within 2s", got.status, took)
		}
	}
	start := time.Now()
	got := call(t, "POST", "http://"+addr+"/api/v1/tasks", `{"type":"demo:echo"}`)
	if got.status != 503 || got.header.Get("Retry-After") == "" || time.Since(start) > 7*time.Second {
		t.Errorf("submit against a silent Redis: %d after %s", got.status, time.Since(start))
	}
}

// TestWeakSecretsRefusedWithoutEchoingThem: in prod each binary refuses a
// weak secret, names the variable and never prints the value.
func TestWeakSecretsRefusedWithoutEchoingThem(t *testing.T) {
	t.Parallel()
	base := map[string]string{
		"APP_ENV": "prod", "REDIS_URL": "redis://127.0.0.1:1/0", "REDIS_PASSWORD": prodRedisPassword,
		"APP_TOKENS_FILE": "/nonexistent", "APP_SESSION_KEY": prodSessionKey,
		"MONITOR_USERNAME": "ops", "MONITOR_PASSWORD": "Vb7-long-random-monitor",
		"APP_ADDR": testsupport.HeldPort(t), "APP_ADMIN_ADDR": testsupport.HeldPort(t),
		"WORKER_ADMIN_ADDR": testsupport.HeldPort(t), "MONITOR_ADDR": testsupport.HeldPort(t),
	}
	cases := []struct{ bin, name, value string }{
		{"app", "REDIS_PASSWORD", "a"},
		{"worker", "REDIS_PASSWORD", "aaaaaaaaaaaaaaaaaaaa"},
		{"app", "APP_SESSION_KEY", "passwordpassword"},
		{"monitor", "MONITOR_PASSWORD", "aaaaaaaaaaaa"},
		{"monitor", "MONITOR_PASSWORD", "passwordpassword"},
		{"monitor", "REDIS_PASSWORD", "Password123456!!"},
	}
	for _, c := range cases {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		env[c.name] = c.value
		p := testsupport.StartProcess(t, testsupport.BuildBinary(t, c.bin), env)
		code, err := p.Wait(20 * time.Second)
		out := p.Output()
		if err != nil || code == 0 {
			t.Errorf("%s with %s=%q: exit %d (%v)", c.bin, c.name, c.value, code, err)
			continue
		}
		if !strings.Contains(out, c.name+":") {
			t.Errorf("%s: the refusal does not name %s:\n%s", c.bin, c.name, out)
		}
		if len(c.value) > 3 && strings.Contains(out, c.value) {
			t.Errorf("%s: the refusal prints the secret:\n%s", c.bin, out)
		}
	}
}

// TestNoSecretInAnyLogLine plants secrets in every place one can be given
// (URLs included), runs the binaries through good and bad configurations
// and outages, and greps everything they wrote.
func TestNoSecretInAnyLogLine(t *testing.T) {
	t.Parallel()
	const redisSecret, urlSecret, otlpSecret, monSecret = "Rds-planted-4f9a2c7e1b", "Url-planted-8d3e6a0c5f", "Otl-planted-2b7c9e4a1d", "Mon-planted-6e1d3b8f2a"
	r := testsupport.StartRedis(t, testsupport.RedisPassword(redisSecret))
	tokFile := filepath.Join(t.TempDir(), "tokens")
	_, line := newToken(t, "ops", "tasks:admin")
	_ = os.WriteFile(tokFile, []byte(line+"\n"), 0o600)
	redisURL := "redis://:" + urlSecret + "@" + r.Addr + "/0"
	common := map[string]string{
		"LOG_LEVEL": "debug", "LOG_FORMAT": "json", "REDIS_URL": redisURL, "REDIS_PASSWORD": redisSecret,
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://user:" + otlpSecret + "@127.0.0.1:1",
		"APP_TOKENS_FILE":             tokFile, "APP_SESSION_KEY": prodSessionKey,
		"MONITOR_USERNAME": "ops", "MONITOR_PASSWORD": monSecret,
	}
	runs := []struct {
		bin   string
		env   map[string]string
		serve bool
	}{
		{"app", map[string]string{"APP_MONITOR_URL": "http://ops:" + monSecret + "@monitor bad"}, false},
		{"monitor", map[string]string{"MONITOR_PROMETHEUS_URL": "prom://ops:" + monSecret + "@x"}, false},
		{"app", map[string]string{"REDIS_URL": "redis://:" + urlSecret + "@host:notaport/0"}, false},
		{"worker", map[string]string{"REDIS_URL": "http://:" + urlSecret + "@host/0"}, false},
		{"app", nil, true},
		{"worker", nil, true},
		{"monitor", nil, true},
	}
	var outputs []string
	for i, run := range runs {
		env := map[string]string{}
		for k, v := range common {
			env[k] = v
		}
		addr, admin := testsupport.HeldPort(t), testsupport.HeldPort(t)
		testsupport.Release(t, addr)
		testsupport.Release(t, admin)
		env["APP_ADDR"], env["APP_ADMIN_ADDR"], env["WORKER_ADMIN_ADDR"], env["MONITOR_ADDR"] = addr, admin, admin, addr
		for k, v := range run.env {
			env[k] = v
		}
		p := testsupport.StartProcess(t, testsupport.BuildBinary(t, run.bin), env)
		if run.serve {
			health := "http://" + addr + "/readyz"
			if run.bin == "worker" {
				health = "http://" + admin + "/readyz"
			}
			testsupport.WaitHTTP(t, p, health, 30*time.Second)
			if run.bin == "monitor" {
				call(t, "GET", "http://"+addr+"/api/queues", "", "Authorization", "Basic b3BzOndyb25n") // a wrong password
			}
			if run.bin == "app" {
				call(t, "GET", "http://"+addr+"/api/v1/tasks", "", "Authorization", "Bearer tsk_wrong")
			}
		} else if code, err := p.Wait(20 * time.Second); err != nil || code == 0 {
			t.Errorf("run %d (%s): a bad configuration started (exit %d, %v)", i, run.bin, code, err)
		}
		if run.serve {
			_ = p.Signal(syscall.SIGTERM)
			_, _ = p.Wait(30 * time.Second)
		}
		outputs = append(outputs, fmt.Sprintf("--- run %d (%s)\n%s", i, run.bin, p.Output()))
	}
	r.Stop() // an outage: errors get logged now
	all := strings.Join(outputs, "\n")
	for _, secret := range []string{redisSecret, urlSecret, otlpSecret, monSecret, prodSessionKey} {
		if strings.Contains(all, secret) {
			t.Errorf("a planted secret reached the output:\n%s", all)
		}
	}
	if !strings.Contains(all, "authentication failed") {
		t.Error("failed logins are not logged")
	}
}

// TestDeepListsKeepTheHeapSmall fills Redis with 100,000 completed tasks
// and runs 20 clients asking for deep pages for a few seconds; the app's
// heap, read from its own /metrics, stays under 64 MiB.
func TestDeepListsKeepTheHeapSmall(t *testing.T) {
	t.Parallel()
	a := startProdApp(t, nil)
	rc := redis.NewClient(&redis.Options{Addr: a.redis.Addr, Password: prodRedisPassword})
	t.Cleanup(func() { _ = rc.Close() })
	fillCompleted(t, rc, 100_000)
	heap := func() float64 {
		for l := range strings.SplitSeq(call(t, "GET", a.adminURL+"/metrics", "").body, "\n") {
			if v, ok := strings.CutPrefix(l, "go_memstats_heap_inuse_bytes "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				return f
			}
		}
		return 0
	}
	before := heap()
	var peak atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(25 * time.Millisecond):
				if h := int64(heap()); h > peak.Load() {
					peak.Store(h)
				}
			}
		}
	})
	paths := []string{
		"/api/v1/tasks?page=100&page_size=100",
		"/api/v1/tasks?state=completed&page=100&page_size=100",
		"/api/v1/tasks?state=completed&queue=high&page=100&page_size=100",
		"/api/v1/tasks?state=completed&queue=high&page=3&page_size=100",
		"/finished_tasks",
		"/",
	}
	var codes sync.Map
	var wg sync.WaitGroup
	deadline := time.Now().Add(6 * time.Second)
	for i := range 20 {
		wg.Go(func() {
			for n := i; time.Now().Before(deadline); n++ {
				got := call(t, "GET", a.url+paths[n%len(paths)], "", a.bearer("reader")...)
				c, _ := codes.LoadOrStore(got.status, new(atomic.Int64))
				c.(*atomic.Int64).Add(1)
				if got.status >= 500 && got.status != 503 {
					t.Errorf("%s = %d", paths[n%len(paths)], got.status)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	sampler.Wait()
	summary := map[int]int64{}
	codes.Range(func(k, v any) bool { summary[k.(int)] = v.(*atomic.Int64).Load(); return true })
	t.Logf("20 clients, deep pages over 100,000 completed tasks: heap in use %.1f MiB before, peak %.1f MiB; answers %v",
		before/(1<<20), float64(peak.Load())/(1<<20), summary)
	if summary[200] == 0 || summary[422] == 0 {
		t.Errorf("want both served pages and refused deep merges (422): %v", summary)
	}
	if peak.Load() > 64<<20 {
		t.Errorf("peak heap %.1f MiB, want under 64 MiB", float64(peak.Load())/(1<<20))
	}
}

// fillCompleted writes n completed demo:echo tasks into asynq's layout for
// queue high, the way asynq stores them, in pipelined batches.
func fillCompleted(t *testing.T, rc *redis.Client, n int) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	pipe := rc.Pipeline()
	for i := range n {
		id := fmt.Sprintf("fill-%06d", i)
		var msg []byte
		msg = protowire.AppendTag(msg, 1, protowire.BytesType)
		msg = protowire.AppendString(msg, "demo:echo")
		msg = protowire.AppendTag(msg, 2, protowire.BytesType)
		msg = protowire.AppendString(msg, `{"arg":"`+id+`","sleep":"0s"}`)
		msg = protowire.AppendTag(msg, 3, protowire.BytesType)
		msg = protowire.AppendString(msg, id)
		msg = protowire.AppendTag(msg, 4, protowire.BytesType)
		msg = protowire.AppendString(msg, "high")
		msg = protowire.AppendTag(msg, 5, protowire.VarintType)
		msg = protowire.AppendVarint(msg, 3)
		msg = protowire.AppendTag(msg, 12, protowire.VarintType)
		msg = protowire.AppendVarint(msg, 86400)
		completed := now.Add(-time.Duration(n-i) * time.Second).Unix()
		msg = protowire.AppendTag(msg, 13, protowire.VarintType)
		msg = protowire.AppendVarint(msg, uint64(completed))
		pipe.HSet(ctx, "asynq:{high}:t:"+id, "msg", msg, "state", "completed", "result", "prefix___"+id)
		pipe.ZAdd(ctx, "asynq:{high}:completed", redis.Z{Score: float64(completed + 86400), Member: id})
		if i%5000 == 4999 {
			if _, err := pipe.Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestTestDepsLeavesOtherRedisAlone: `make test` installs what it needs
// without stopping anybody's processes: a redis-server started before it,
// on another port, still answers after the install step, and no script of
// ours stops processes by name.
func TestTestDepsLeavesOtherRedisAlone(t *testing.T) {
	t.Parallel()
	r := testsupport.StartRedis(t) // stands in for a developer's own Redis
	cmd := testsupport.Command(t, 2*time.Minute, "bash", "scripts/test-deps.sh")
	cmd.Dir = testsupport.RepoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/test-deps.sh: %v\n%s", err, out)
	}
	rc := r.Client(t)
	if err := rc.Ping(context.Background()).Err(); err != nil {
		t.Errorf("the unrelated redis-server is gone after test-deps.sh: %v", err)
	}
	for _, f := range []string{"scripts/test.sh", "scripts/test-deps.sh", "scripts/mutate.sh", "scripts/fuzz.sh", "Makefile", "bench/bench.sh", "bench/bench.mk", "bench/page.sh"} {
		b, err := os.ReadFile(filepath.Join(testsupport.RepoRoot(t), f))
		if err != nil {
			t.Fatal(err)
		}
		for l := range strings.SplitSeq(string(b), "\n") {
			if l = strings.TrimSpace(l); !strings.HasPrefix(l, "#") && (strings.Contains(l, "pkill") || strings.Contains(l, "killall")) {
				t.Errorf("%s stops processes by name: %q", f, l)
			}
		}
	}
}

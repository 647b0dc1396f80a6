package web_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// authFixture is the app with tokens: reader (tasks:read), writer
// (tasks:read,tasks:write) and admin (tasks:admin).
type authFixture struct {
	*fixture
	tokens    map[string]string // name -> token
	file      string
	tokensObj *guard.Tokens
	reg       *prometheus.Registry
	logs      *testsupport.LogBuffer
}

func setupAuth(t *testing.T, mod func(*web.Options)) *authFixture {
	t.Helper()
	dir := t.TempDir()
	f := &authFixture{tokens: map[string]string{}, file: filepath.Join(dir, "tokens"), reg: prometheus.NewRegistry()}
	var lines []string
	for name, scopes := range map[string][]guard.Scope{
		"reader": {guard.ScopeRead},
		"writer": {guard.ScopeRead, guard.ScopeWrite},
		"admin":  {guard.ScopeAdmin},
	} {
		tok, line, err := guard.NewToken(name, scopes)
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[name] = tok
		lines = append(lines, line)
	}
	if err := os.WriteFile(f.file, []byte("# test tokens\n"+strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.logs = testsupport.NewLogBuffer(t)
	log := telemetry.NewLogger(f.logs, "json", nil)
	toks, err := guard.LoadTokens(f.file, log)
	if err != nil {
		t.Fatal(err)
	}
	f.tokensObj = toks
	sessions := guard.NewSessions([]byte("0123456789abcdef0123456789abcdef"), time.Hour, true)
	lockout, err := guard.NewLockout("app", f.reg, log)
	if err != nil {
		t.Fatal(err)
	}
	o := web.Options{
		Auth:   guard.NewAuthenticator(guard.AuthOptions{Tokens: toks, Sessions: sessions}),
		Tokens: toks, Sessions: sessions, Lockout: lockout, Registry: f.reg, Logger: log,
	}
	if mod != nil {
		mod(&o)
	}
	r := testsupport.StartRedis(t)
	rc := redis.NewClient(&redis.Options{Addr: r.Addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rc.Close() })
	app, st := newApp(t, rc, o)
	srv := serve(t, app)
	f.fixture = &fixture{srv: srv, redis: r, rc: rc, store: st}
	return f
}

func (f *authFixture) as(name string) []string {
	switch name {
	case "":
		return nil
	case "wrong":
		return []string{"Authorization", "Bearer tsk_not-a-real-token"}
	}
	return []string{"Authorization", "Bearer " + f.tokens[name]}
}

// TestEveryRouteNeedsTheRightScope: every route with no credential, a
// wrong one, a read-only one, a writer's and an admin's.
func TestEveryRouteNeedsTheRightScope(t *testing.T) {
	t.Parallel()
	f := setupAuth(t, nil)
	id := f.post(t, `{"type":"demo:echo","payload":{"arg":"x"}}`, f.as("writer")...).json(t)["id"].(string)
	routes := []struct {
		method, path, body string
		scope              guard.Scope
		ok                 int
	}{
		{"GET", "/", "", guard.ScopeRead, 200},
		{"GET", "/tasks/default/" + id, "", guard.ScopeRead, 200},
		{"POST", "/tasks", "arg=a&sleep=0s&queue=low", guard.ScopeWrite, 303},
		{"POST", "/api/v1/tasks", `{"type":"demo:echo","payload":{"arg":"y"}}`, guard.ScopeWrite, 202},
		{"GET", "/api/v1/tasks", "", guard.ScopeRead, 200},
		{"GET", "/api/v1/queues", "", guard.ScopeRead, 200},
		{"GET", "/api/v1/queues/default/tasks/" + id, "", guard.ScopeRead, 200},
		{"GET", "/finished_tasks", "", guard.ScopeRead, 200},
		{"DELETE", "/api/v1/queues/default/tasks/" + id, "", guard.ScopeAdmin, 204},
	}
	wrong := 0
	for _, rt := range routes {
		for _, who := range []string{"", "wrong", "reader", "writer", "admin"} {
			// The admin runs last: its DELETE removes the task.
			headers := f.as(who)
			if strings.HasPrefix(rt.body, "arg=") {
				headers = append(headers, "Content-Type", "application/x-www-form-urlencoded")
			}
			res := f.do(t, rt.method, rt.path, strings.NewReader(rt.body), headers...)
			if who == "wrong" {
				wrong++
			}
			want := rt.ok
			switch {
			case who == "wrong" && wrong > 5:
				// The address has used up its bad-credential budget.
				want = http.StatusTooManyRequests
			case who == "" || who == "wrong":
				want = http.StatusUnauthorized
			case who == "reader" && rt.scope != guard.ScopeRead, who == "writer" && rt.scope == guard.ScopeAdmin:
				want = http.StatusForbidden
			}
			if want == http.StatusTooManyRequests && res.header.Get("Retry-After") == "" {
				t.Errorf("%s %s: 429 without Retry-After", rt.method, rt.path)
			}
			if rt.method == "POST" && rt.path == "/tasks" && want == rt.ok {
				want = http.StatusOK // the test client follows the redirect to the page
			}
			if res.status != want {
				t.Errorf("%s %s as %q = %d, want %d: %.200s", rt.method, rt.path, who, res.status, want, res.body)
				continue
			}
			isAPI := strings.HasPrefix(rt.path, "/api/") || rt.path == "/finished_tasks"
			if want == 401 || want == 403 {
				ct := res.header.Get("Content-Type")
				if isAPI && ct != "application/problem+json" {
					t.Errorf("%s %s as %q: %d as %q, want problem+json", rt.method, rt.path, who, want, ct)
				}
				if !isAPI && !strings.HasPrefix(ct, "text/html") {
					t.Errorf("%s %s as %q: %d as %q, want a page", rt.method, rt.path, who, want, ct)
				}
				if isAPI && want == 401 && !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s %s: 401 without a Bearer challenge", rt.method, rt.path)
				}
				if !isAPI && want == 401 && !strings.Contains(string(res.body), `action="/login"`) {
					t.Errorf("%s %s: a person without a session does not get the login form", rt.method, rt.path)
				}
			}
		}
	}
	// Static files and the login page are open: the login page needs them.
	// So is the API's description: it holds no data.
	for _, p := range []string{"/static/app.css", "/static/app.js", "/login", "/api/v1/openapi.json"} {
		if res := f.do(t, "GET", p, nil); res.status != 200 {
			t.Errorf("GET %s without a credential = %d", p, res.status)
		}
	}
	if n := testutil.ToFloat64(counter(t, f.reg, "taskstack_auth_failures_total")); n < 9 {
		t.Errorf("taskstack_auth_failures_total = %v after 9 wrong tokens", n)
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	return collectorFunc(func() float64 {
		fams, _ := reg.Gather()
		for _, fam := range fams {
			if fam.GetName() == name {
				sum := 0.0
				for _, m := range fam.GetMetric() {
					sum += m.GetCounter().GetValue()
				}
				return sum
			}
		}
		return 0
	})
}

type collectorFunc func() float64

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) {
	ch <- prometheus.NewDesc("sum", "sum", nil, nil)
}
func (c collectorFunc) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("sum", "sum", nil, nil), prometheus.GaugeValue, c())
}

// TestLoginSessionAndRotation: a person logs in with a token and gets a
// signed HttpOnly, Secure, SameSite=Strict cookie; the session works for
// the page and the API; removing the token from the file ends it.
func TestLoginSessionAndRotation(t *testing.T) {
	t.Parallel()
	f := setupAuth(t, nil)
	client := testsupport.HTTPClient()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	login := func(tok, next string) *http.Response {
		resp, err := client.PostForm(f.srv.URL+"/login", url.Values{"token": {tok}, "next": {next}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := login("tsk_wrong", "/"); resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Errorf("a wrong token: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	resp := login(f.tokens["reader"], "//evil.example/x")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Errorf("login: %d to %q; an off-site next must become /", resp.StatusCode, resp.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == guard.SessionCookie {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || !session.Secure || session.SameSite != http.SameSiteStrictMode || session.Path != "/" {
		t.Fatalf("session cookie %+v, want HttpOnly, Secure, SameSite=Strict", session)
	}
	if strings.Contains(session.Value, f.tokens["reader"]) {
		t.Error("the cookie carries the token")
	}
	cookie := []string{"Cookie", session.Name + "=" + session.Value}
	if res := f.do(t, "GET", "/", nil, cookie...); res.status != 200 || !strings.Contains(string(res.body), "Signed in as") {
		t.Errorf("the page with the session: %d", res.status)
	}
	if res := f.do(t, "GET", "/api/v1/tasks", nil, cookie...); res.status != 200 {
		t.Errorf("the API with the session: %d", res.status)
	}
	if res := f.do(t, "POST", "/api/v1/tasks", strings.NewReader(`{"type":"demo:echo"}`), cookie...); res.status != 403 {
		t.Errorf("a reader's session submitting: %d, want 403", res.status)
	}
	// A forged cookie (another name, same signature) is refused.
	forged := []string{"Cookie", session.Name + "=" + "eyJuIjoiYWRtaW4ifQ" + session.Value[strings.Index(session.Value, "."):]}
	if res := f.do(t, "GET", "/api/v1/tasks", nil, forged...); res.status != 401 {
		t.Errorf("a forged session: %d, want 401", res.status)
	}

	// Rotation: drop the reader's line, add a new reader; no restart.
	newTok, line, err := guard.NewToken("reader2", []guard.Scope{guard.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(f.file)
	var kept []string
	for _, l := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(l, "reader:") {
			kept = append(kept, l)
		}
	}
	if err := os.WriteFile(f.file, []byte(strings.Join(append(kept, line), "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go f.tokensObj.Watch(ctx, 20*time.Millisecond)
	testsupport.Eventually(t, 10*time.Second, "the old token refused", func() bool {
		return f.do(t, "GET", "/api/v1/queues", nil, f.as("reader")...).status == 401
	})
	if res := f.do(t, "GET", "/api/v1/queues", nil, "Authorization", "Bearer "+newTok); res.status != 200 {
		t.Errorf("the new token: %d", res.status)
	}
	if res := f.do(t, "GET", "/", nil, cookie...); res.status != 401 {
		t.Errorf("a session of a revoked token: %d, want 401", res.status)
	}
	// Logout clears the cookie.
	req, _ := http.NewRequest("POST", f.srv.URL+"/logout", nil)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if c := resp.Cookies(); len(c) != 1 || c[0].MaxAge >= 0 {
		t.Errorf("logout cookies %v, want the session cleared", c)
	}
}

func TestSubmissionRateLimit(t *testing.T) {
	t.Parallel()
	f := setupAuth(t, func(o *web.Options) { o.SubmitLimit = guard.NewLimiter(1, 3) })
	var codes []int
	for range 5 {
		res := f.post(t, `{"type":"demo:echo","payload":{"arg":"x"}}`, f.as("writer")...)
		codes = append(codes, res.status)
		if res.status == http.StatusTooManyRequests && (res.header.Get("Retry-After") == "" || res.header.Get("Content-Type") != "application/problem+json") {
			t.Errorf("429 without Retry-After or problem+json: %v", res.header)
		}
	}
	if codes[0] != 202 || codes[2] != 202 || codes[3] != 429 || codes[4] != 429 {
		t.Errorf("codes %v, want a burst of 3 then 429", codes)
	}
	// Another credential has its own budget.
	if res := f.post(t, `{"type":"demo:echo"}`, f.as("admin")...); res.status != 202 {
		t.Errorf("admin after the writer's limit: %d", res.status)
	}
	if n := testutil.ToFloat64(counter(t, f.reg, "taskstack_tasks_rejected_total")); n != 2 {
		t.Errorf("taskstack_tasks_rejected_total = %v, want 2", n)
	}
}

func TestPendingCap(t *testing.T) {
	t.Parallel()
	r := testsupport.StartRedis(t)
	rc := redis.NewClient(&redis.Options{Addr: r.Addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rc.Close() })
	st := store.New(store.Options{Redis: rc, Retention: time.Hour, Queues: tasks.Queues(), MaxPending: 3})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go st.Watch(ctx, 20*time.Millisecond)
	reg := prometheus.NewRegistry()
	app, err := web.New(web.Options{Store: st, Catalogue: tasks.NewCatalogue(), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, app)
	f := &fixture{srv: srv}
	got := map[int]int{}
	for range 6 {
		res := f.post(t, `{"type":"demo:echo","queue":"high"}`)
		got[res.status]++
		if res.status == http.StatusTooManyRequests && res.header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
		time.Sleep(50 * time.Millisecond) // let the watch see the new length
	}
	if got[202] != 3 || got[429] != 3 {
		t.Errorf("statuses %v, want 3 accepted then 429 at the cap", got)
	}
	if res := f.post(t, `{"type":"demo:echo","queue":"low"}`); res.status != 202 {
		t.Errorf("another queue is not capped by high's backlog: %d", res.status)
	}
}

package webhook

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

func mustAllow(t *testing.T, entries ...string) *Allowlist {
	t.Helper()
	a, err := ParseAllowlist(entries)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestParseAllowlistRefusesNonsense(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"http://example.com", "exa mple.com", "10.0.0.0/33", "*.*.example.com", "-bad.example.com", "example.com:8080"} {
		if _, err := ParseAllowlist([]string{bad}); err == nil {
			t.Errorf("ParseAllowlist(%q) accepted it", bad)
		}
	}
	if a := mustAllow(t, " ", ""); !a.Empty() {
		t.Error("blank entries allow something")
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	a := mustAllow(t, "hooks.example.com", "*.partner.test", "203.0.113.0/24", "127.0.0.1")
	tests := []struct {
		url  string
		want string // "" allowed, else a substring of the refusal
	}{
		{"https://hooks.example.com/in", ""},
		{"http://HOOKS.example.com.:8443/in?x=1", ""},
		{"https://a.b.partner.test/", ""},
		{"https://partner.test/", "not on the allowlist"},
		{"https://example.com/", "not on the allowlist"},
		{"https://evil.com/?hooks.example.com", "not on the allowlist"},
		{"https://hooks.example.com.evil.com/", "not on the allowlist"},
		{"http://203.0.113.9/", ""},
		{"http://127.0.0.1:9999/", ""},
		{"http://127.0.0.2/", "not on the allowlist"},
		{"http://[::1]/", "not on the allowlist"},
		{"http://10.0.0.1/", "not on the allowlist"},
		{"ftp://hooks.example.com/", "http or https"},
		{"hooks.example.com/in", "http or https"},
		{"https://user:pw@hooks.example.com/", "user name or password"},
		{"https:///nohost", "must name a host"},
		{"https://hooks.example.com:99999/", "not a port"},
		{"https://hooks.example.com/" + strings.Repeat("a", MaxURL), "at most"},
	}
	for _, tt := range tests {
		err := a.CheckURL(tt.url)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("CheckURL(%q) = %v, want allowed", tt.url, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("CheckURL(%q) = %v, want a refusal saying %q", tt.url, err, tt.want)
		}
	}
	if err := (&Allowlist{}).CheckURL("https://example.com/"); err == nil || !strings.Contains(err.Error(), "WEBHOOK_ALLOWED_HOSTS") {
		t.Errorf("an empty allowlist: %v", err)
	}
}

// TestOnlyPublicAddressesUnlessListed: whatever a name resolves to, the
// address dialled must be public, or inside an allowlisted range.
func TestOnlyPublicAddressesUnlessListed(t *testing.T) {
	t.Parallel()
	a := mustAllow(t, "*", "10.1.2.0/24")
	for addr, want := range map[string]bool{
		"93.184.215.14": true, "2606:2800:21f:cb07:6820:80da:af6b:8b2c": true,
		"10.1.2.3":  true, // listed
		"127.0.0.1": false, "::1": false, "10.9.9.9": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "fe80::1": false, "fd00::1": false, "0.0.0.0": false, "::": false,
		"100.64.0.1": false, "224.0.0.1": false, "255.255.255.255": false, "::ffff:127.0.0.1": false,
		"64:ff9b::7f00:1": false, "2002:7f00:1::": false, "198.18.0.1": false,
	} {
		if got := a.AllowsAddress(netip.MustParseAddr(addr)); got != want {
			t.Errorf("AllowsAddress(%s) = %v, want %v", addr, got, want)
		}
	}
}

type received struct {
	mu       sync.Mutex
	requests []*http.Request
	bodies   []string
}

func (r *received) add(req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, req)
	r.bodies = append(r.bodies, string(b))
}

func TestSend(t *testing.T) {
	t.Parallel()
	var got received
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { got.add(r); w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/busy", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/slow-down", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", time.Now().Add(90*time.Second).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusTooManyRequests)
	})
	mux.HandleFunc("/gone", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	// The test server is on loopback: it must be listed explicitly.
	c := NewClient(Options{Allow: mustAllow(t, "127.0.0.1", "localhost"), Timeout: 300 * time.Millisecond})
	ctx := context.Background()

	status, err := c.Send(ctx, srv.URL+"/ok", []byte(`{"n":1}`), "task-42")
	if err != nil || status != http.StatusNoContent {
		t.Fatalf("Send = %d, %v", status, err)
	}
	if r := got.requests[0]; r.Method != http.MethodPost || r.Header.Get("Idempotency-Key") != "task-42" ||
		r.Header.Get("Content-Type") != "application/json" || got.bodies[0] != `{"n":1}` {
		t.Errorf("received %s %v %q", r.Method, r.Header, got.bodies[0])
	}

	var se *StatusError
	_, err = c.Send(ctx, srv.URL+"/busy", nil, "k")
	if !errors.As(err, &se) || se.Permanent() || se.RetryAfter() != 7*time.Second {
		t.Errorf("503 with Retry-After: 7 = %v, want a retryable StatusError asking for 7s", err)
	}
	_, err = c.Send(ctx, srv.URL+"/slow-down", nil, "k")
	if !errors.As(err, &se) || se.Permanent() || se.RetryAfter() < 80*time.Second || se.RetryAfter() > 100*time.Second {
		t.Errorf("429 with an HTTP-date Retry-After = %v, want about 90s", err)
	}
	_, err = c.Send(ctx, srv.URL+"/gone", nil, "k")
	if !errors.As(err, &se) || !se.Permanent() {
		t.Errorf("404 = %v, want a permanent failure", err)
	}
	// A redirect is not followed: its target (here the cloud metadata
	// address) was never checked.
	_, err = c.Send(ctx, srv.URL+"/moved", nil, "k")
	if !errors.As(err, &se) || se.Status != http.StatusFound || !se.Permanent() {
		t.Errorf("302 = %v, want a permanent failure, not followed", err)
	}
	_, err = c.Send(ctx, srv.URL+"/hang", nil, "k")
	var perm interface{ Permanent() bool }
	if err == nil || (errors.As(err, &perm) && perm.Permanent()) {
		t.Errorf("a receiver that does not answer = %v, want a retryable timeout", err)
	}

	// "localhost" is allowed as a name, but it resolves to loopback, which
	// is only allowed where an address range lists it: what a DNS
	// rebinding attack looks like from here.
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	named := NewClient(Options{Allow: mustAllow(t, "localhost")})
	_, err = named.Send(ctx, "http://localhost"+port+"/ok", nil, "k")
	if !errors.Is(err, ErrForbiddenAddress) || !errors.As(err, &perm) || !perm.Permanent() {
		t.Errorf("a name resolving to loopback = %v, want ErrForbiddenAddress, permanent", err)
	}
	if _, err := named.Send(ctx, "http://evil.test/", nil, "k"); !errors.As(err, &perm) || !perm.Permanent() {
		t.Errorf("a URL off the allowlist = %v, want a permanent refusal", err)
	}
	if n := len(got.requests); n != 1 {
		t.Errorf("the receiver got %d requests on /ok, want 1", n)
	}
}

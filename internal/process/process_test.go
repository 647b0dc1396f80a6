package process_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"taskstack/internal/process"
	"taskstack/internal/testsupport"
)

type pinger struct {
	mu  sync.Mutex
	err error
}

func (p *pinger) Ping(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *pinger) set(err error) {
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// running is a Run in the background with its stderr and result.
type running struct {
	cancel context.CancelFunc
	done   chan error
	logs   *testsupport.LogBuffer
}

func start(t *testing.T, o process.Options, setup func(context.Context, *process.Process) error) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), logs: testsupport.NewLogBuffer(t)}
	o.Stderr = r.logs
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 2 * time.Second
	}
	go func() { r.done <- process.Run(ctx, o, setup) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return 10s after its context ended")
		}
	})
	return r
}

// stop cancels the run (as SIGTERM does in Main) and returns its result.
func (r *running) stop(t *testing.T, within time.Duration) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(within):
		t.Fatalf("Run did not return within %s of its context ending", within)
		return nil
	}
}

func TestOpsEndpointsAndReadiness(t *testing.T) {
	t.Parallel()
	admin := "127.0.0.1:" + portOf(t)
	pg := &pinger{}
	r := start(t, process.Options{Name: "test", AdminAddr: admin}, func(_ context.Context, p *process.Process) error {
		p.Ready(pg)
		return nil
	})
	testsupport.WaitHTTP(t, nil, "http://"+admin+"/healthz", 10*time.Second)
	if code, body := get(t, "http://"+admin+"/metrics"); code != 200 || !strings.Contains(body, "taskstack_build_info") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics = %d:\n%.300s", code, body)
	}
	if code, _ := get(t, "http://"+admin+"/readyz"); code != 200 {
		t.Errorf("/readyz with the dependency up = %d", code)
	}
	pg.set(errors.New("redis is down"))
	if code, body := get(t, "http://"+admin+"/readyz"); code != 503 || strings.Contains(body, "redis is down") {
		t.Errorf("/readyz with the dependency down = %d %q, want 503 without internal text", code, body)
	}
	if code, _ := get(t, "http://"+admin+"/healthz"); code != 200 {
		t.Errorf("/healthz must not depend on the dependency: %d", code)
	}
	if err := r.stop(t, 10*time.Second); err != nil {
		t.Errorf("clean stop: %v", err)
	}
}

func portOf(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// TestShutdownOrderAndTimeout: on shutdown a server gets ShutdownTimeout to
// finish a slow request, jobs see their context end, the admin port stays
// up while they drain, closers run last first, and Run returns.
func TestShutdownOrderAndTimeout(t *testing.T) {
	t.Parallel()
	admin := "127.0.0.1:" + portOf(t)
	var mu sync.Mutex
	var order []string
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	inRequest := make(chan struct{})
	addrc := make(chan string, 1)
	r := start(t, process.Options{Name: "test", AdminAddr: admin, ShutdownTimeout: 5 * time.Second}, func(_ context.Context, p *process.Process) error {
		ln, err := p.Listen("127.0.0.1:0")
		if err != nil {
			return err
		}
		addrc <- ln.Addr().String()
		p.Serve("app", ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			close(inRequest)
			time.Sleep(time.Second) // a slow request in flight at shutdown
			_, _ = w.Write([]byte("finished"))
			note("request finished")
		}))
		p.Go("job", func(ctx context.Context) error {
			<-ctx.Done()
			// Draining: the admin port must still answer.
			code, _ := get(t, "http://"+admin+"/healthz")
			note("job drained, admin " + http.StatusText(code))
			return nil
		})
		p.Defer(func() error { note("closer 1"); return nil })
		p.Defer(func() error { note("closer 2"); return nil })
		return nil
	})
	testsupport.WaitHTTP(t, nil, "http://"+admin+"/healthz", 10*time.Second)
	appAddr := testsupport.Receive(t, addrc, 10*time.Second, "setup's listener")
	got := make(chan string, 1)
	go func() {
		resp, err := testsupport.HTTPClient().Get("http://" + appAddr + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	select {
	case <-inRequest:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the handler")
	}
	if err := r.stop(t, 10*time.Second); err != nil {
		t.Errorf("stop: %v", err)
	}
	if body := testsupport.Receive(t, got, 10*time.Second, "the in-flight request's answer"); body != "finished" {
		t.Errorf("the in-flight request got %q, want it finished", body)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"job drained, admin OK", "request finished", "closer 2", "closer 1"}
	if strings.Join(order[2:], "|") != "closer 2|closer 1" || len(order) != 4 || !contains(order, want[0]) || !contains(order, want[1]) {
		t.Errorf("order %q, want the job (admin still OK) and the request, then closers last first", order)
	}
	if _, err := net.Dial("tcp", admin); err == nil {
		t.Error("the admin port still accepts connections after Run returned")
	}
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func TestShutdownTimeoutBoundsASlowRequest(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	inRequest := make(chan struct{})
	addrc := make(chan string, 1)
	r := start(t, process.Options{Name: "test", ShutdownTimeout: 300 * time.Millisecond}, func(_ context.Context, p *process.Process) error {
		ln, err := p.Listen("127.0.0.1:0")
		if err != nil {
			return err
		}
		addrc <- ln.Addr().String()
		p.Serve("app", ln, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
			close(inRequest)
			<-release // never finishes on its own
		}))
		return nil
	})
	addr := testsupport.Receive(t, addrc, 10*time.Second, "setup's listener")
	go func() { _, _ = testsupport.HTTPClient().Get("http://" + addr + "/") }()
	select {
	case <-inRequest:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the handler")
	}
	start := time.Now()
	_ = r.stop(t, 10*time.Second)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Run took %s to return with a 300ms shutdown timeout", took)
	}
	if len(r.logs.Lines("shutdown did not finish in time")) != 1 {
		t.Error("a server cut off by the timeout is not reported")
	}
}

func TestSetupErrorReleasesListeners(t *testing.T) {
	t.Parallel()
	addr := "127.0.0.1:" + portOf(t)
	closed := false
	err := testsupport.Refusal(t, 10*time.Second, "Run with a failing setup", func(ctx context.Context) error {
		return process.Run(ctx, process.Options{Name: "test", Stderr: io.Discard}, func(_ context.Context, p *process.Process) error {
			if _, err := p.Listen(addr); err != nil {
				return err
			}
			p.Defer(func() error { closed = true; return nil })
			return errors.New("setup failed")
		})
	})
	if err == nil || !strings.Contains(err.Error(), "setup failed") || !closed {
		t.Fatalf("Run = %v, closers run %v", err, closed)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the listener leaked: %v", err)
	}
	ln.Close()
}

func TestPortInUseFailsAtOnce(t *testing.T) {
	t.Parallel()
	held := testsupport.HeldPort(t)
	err := testsupport.Refusal(t, 10*time.Second, "Run on a port in use", func(ctx context.Context) error {
		return process.Run(ctx, process.Options{Name: "test", AdminAddr: held, Stderr: io.Discard}, func(context.Context, *process.Process) error {
			t.Error("setup ran although the admin port could not be bound")
			return nil
		})
	})
	if err == nil || !strings.Contains(err.Error(), held) {
		t.Errorf("Run = %v, want an error naming %s", err, held)
	}
}

func TestJobFailureEndsTheProcess(t *testing.T) {
	t.Parallel()
	err := testsupport.Refusal(t, 10*time.Second, "Run with a failing job", func(ctx context.Context) error {
		return process.Run(ctx, process.Options{Name: "test", Stderr: io.Discard, ShutdownTimeout: time.Second}, func(_ context.Context, p *process.Process) error {
			p.Go("worker", func(context.Context) error { return errors.New("asynq server would not start") })
			return nil
		})
	})
	if err == nil || !strings.Contains(err.Error(), "worker: asynq server would not start") {
		t.Errorf("Run = %v", err)
	}
}

func TestHealthcheckSubcommand(t *testing.T) {
	t.Parallel()
	admin := "127.0.0.1:" + portOf(t)
	start(t, process.Options{Name: "test", AdminAddr: admin}, func(context.Context, *process.Process) error { return nil })
	testsupport.WaitHTTP(t, nil, "http://"+admin+"/healthz", 10*time.Second)
	healthcheck := func(addr string, args ...string) error {
		return testsupport.Refusal(t, 10*time.Second, "healthcheck", func(ctx context.Context) error {
			return process.Run(ctx, process.Options{Name: "test", Args: args, HealthAddr: addr, Stderr: io.Discard}, func(context.Context, *process.Process) error {
				t.Error("the healthcheck subcommand ran setup")
				return nil
			})
		})
	}
	if err := healthcheck(admin, "healthcheck"); err != nil {
		t.Errorf("healthy: %v", err)
	}
	_, port, _ := net.SplitHostPort(admin)
	if err := healthcheck(":"+port, "healthcheck"); err != nil {
		t.Errorf("healthy on a wildcard address: %v", err)
	}
	if err := healthcheck(testsupport.HeldPort(t), "healthcheck"); err == nil {
		t.Error("a port that does not answer HTTP is healthy")
	}
	if err := healthcheck(admin, "serve"); err == nil || !strings.Contains(err.Error(), "healthcheck") {
		t.Errorf("unknown subcommand: %v", err)
	}
	if err := healthcheck(admin, "healthcheck", "extra"); err == nil {
		t.Error("extra arguments accepted")
	}
}

func TestDisplayAddr(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{":8080": "localhost:8080", "0.0.0.0:80": "localhost:80", "127.0.0.1:9": "127.0.0.1:9", "[::]:81": "localhost:81"} {
		a, err := net.ResolveTCPAddr("tcp", in)
		if err != nil {
			t.Fatal(err)
		}
		if got := process.DisplayAddr(a); got != want {
			t.Errorf("DisplayAddr(%s) = %s, want %s", in, got, want)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"taskstack/internal/stack"
	"taskstack/internal/testsupport"
)

const redisPassword = "Zq8-long-random-redis-value"

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// run is what main runs, with the environment given.
func run(ctx context.Context, args []string, getenv func(string) string, _, stderr io.Writer) error {
	return stack.RunMonitor(ctx, stack.Invocation{Args: args, Getenv: getenv, Stderr: stderr, Version: version, Commit: commit})
}

// syncBuffer is a bytes.Buffer safe to write from run's goroutine while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestProdRefusesToStartWithoutRealCredentials(t *testing.T) {
	t.Parallel()
	base := map[string]string{
		"APP_ENV": "prod", "REDIS_URL": "redis://127.0.0.1:1/0", "REDIS_PASSWORD": redisPassword,
		// Were the check to pass, listening here would fail too (the test
		// holds the port, whatever the user): the refusal must say
		// MONITOR_PASSWORD, and Refusal fails the test if run starts.
		"MONITOR_ADDR": testsupport.HeldPort(t),
	}
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no credentials", nil, "MONITOR_PASSWORD: authentication is required when APP_ENV=prod"},
		{"user without password", map[string]string{"MONITOR_USERNAME": "ops"}, "MONITOR_PASSWORD"},
		{"placeholder password", map[string]string{"MONITOR_USERNAME": "ops", "MONITOR_PASSWORD": "change-me-now-please"}, "MONITOR_PASSWORD: is a placeholder"},
		{"known weak password", map[string]string{"MONITOR_USERNAME": "ops", "MONITOR_PASSWORD": "password"}, "MONITOR_PASSWORD: is a placeholder"},
		{"repeated password", map[string]string{"MONITOR_USERNAME": "ops", "MONITOR_PASSWORD": "passwordpassword"}, "MONITOR_PASSWORD: is one short pattern repeated"},
		{"short password", map[string]string{"MONITOR_USERNAME": "ops", "MONITOR_PASSWORD": "x7-Qk2"}, "MONITOR_PASSWORD: must be at least 16 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			var stderr syncBuffer
			err := testsupport.Refusal(t, 10*time.Second, "monitor in prod with "+tt.name, func(ctx context.Context) error {
				return run(ctx, nil, envOf(env), &stderr, &stderr)
			})
			if err == nil {
				t.Fatal("run started in prod without real credentials")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if strings.Contains(err.Error(), env["MONITOR_PASSWORD"]) && env["MONITOR_PASSWORD"] != "" {
				t.Errorf("error echoes the password: %q", err)
			}
		})
	}
}

func TestRunServesAndShutsDown(t *testing.T) {
	t.Parallel()
	r := testsupport.StartRedis(t)
	addr := "127.0.0.1:" + strconv.Itoa(testsupport.FreePort(t))
	env := envOf(map[string]string{
		"REDIS_URL": r.URL, "MONITOR_ADDR": addr, "MONITOR_ROOT_PATH": "/monitor/",
		"MONITOR_USERNAME": "ops", "MONITOR_PASSWORD": "a-long-test-password",
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, env, &stderr, &stderr) }()

	testsupport.WaitHTTP(t, nil, "http://"+addr+"/healthz", 10*time.Second)
	var hcErr error
	testsupport.Within(t, 10*time.Second, "the healthcheck subcommand", func() {
		hcErr = run(ctx, []string{"healthcheck"}, env, &stderr, &stderr)
	})
	if hcErr != nil {
		t.Errorf("healthcheck subcommand: %v", hcErr)
	}
	resp, err := testsupport.HTTPClient().Get("http://" + addr + "/monitor/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("dashboard without credentials = %d, want 401", resp.StatusCode)
	}
	if log := stderr.String(); !strings.Contains(log, "monitor listening") || strings.Contains(log, "authentication is OFF") {
		t.Errorf("start log:\n%s", log)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after cancel: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after its context was cancelled")
	}
}

func TestRunWithoutCredentialsSaysSo(t *testing.T) {
	t.Parallel()
	r := testsupport.StartRedis(t)
	addr := "127.0.0.1:" + strconv.Itoa(testsupport.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, nil, envOf(map[string]string{"REDIS_URL": r.URL, "MONITOR_ADDR": addr}), &stderr, &stderr)
	}()
	testsupport.WaitHTTP(t, nil, "http://"+addr+"/healthz", 10*time.Second)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after its context was cancelled")
	}
	if !strings.Contains(stderr.String(), "authentication is OFF") {
		t.Errorf("dev without credentials does not warn:\n%s", stderr.String())
	}
}

func TestUnknownSubcommand(t *testing.T) {
	t.Parallel()
	err := testsupport.Refusal(t, 10*time.Second, "monitor serve", func(ctx context.Context) error {
		return run(ctx, []string{"serve"}, envOf(nil), &syncBuffer{}, &syncBuffer{})
	})
	if err == nil || !strings.Contains(err.Error(), "healthcheck") {
		t.Errorf("run(serve) = %v, want an error naming the known subcommand", err)
	}
}

// TestBinaryInProd runs the built binary as production would: Redis with a
// password, credentials required, read-only by default, SIGTERM to stop.
func TestBinaryInProd(t *testing.T) {
	t.Parallel()
	bin := testsupport.BuildBinary(t, "monitor")
	r := testsupport.StartRedis(t, testsupport.RedisPassword(redisPassword))

	refused := testsupport.StartProcess(t, bin, map[string]string{"APP_ENV": "prod", "REDIS_URL": r.URL, "REDIS_PASSWORD": redisPassword})
	if code, err := refused.Wait(10 * time.Second); err != nil || code == 0 {
		t.Fatalf("prod without credentials: exit %d (%v)", code, err)
	}
	if out := refused.Output(); !strings.Contains(out, "MONITOR_PASSWORD: authentication is required") {
		t.Errorf("refusal message:\n%s", out)
	}

	addr := "127.0.0.1:" + strconv.Itoa(testsupport.FreePort(t))
	p := testsupport.StartProcess(t, bin, map[string]string{
		"APP_ENV": "prod", "REDIS_URL": r.URL, "REDIS_PASSWORD": redisPassword,
		"MONITOR_ADDR": addr, "MONITOR_USERNAME": "ops", "MONITOR_PASSWORD": "Vb7-long-random-monitor",
	})
	testsupport.WaitHTTP(t, p, "http://"+addr+"/readyz", 15*time.Second)
	for _, c := range []struct {
		method, user string
		want         int
	}{
		{http.MethodGet, "", http.StatusUnauthorized},
		{http.MethodGet, "ops", http.StatusOK},
		{http.MethodPost, "ops", http.StatusMethodNotAllowed}, // read-only by default in prod
	} {
		req, _ := http.NewRequest(c.method, "http://"+addr+"/api/queues/high:pause", nil)
		if c.method == http.MethodGet {
			req, _ = http.NewRequest(c.method, "http://"+addr+"/api/queues", nil)
		}
		if c.user != "" {
			req.SetBasicAuth(c.user, "Vb7-long-random-monitor")
		}
		resp, err := testsupport.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s %s as %q = %d, want %d", c.method, req.URL.Path, c.user, resp.StatusCode, c.want)
		}
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, err := p.Wait(20 * time.Second); err != nil || code != 0 {
		t.Errorf("after SIGTERM: exit %d (%v)\n%s", code, err, p.Output())
	}
	if out := p.Output(); strings.Contains(out, "Vb7-long-random-monitor") || strings.Contains(out, redisPassword) {
		t.Errorf("a secret reached the log:\n%s", out)
	}
}

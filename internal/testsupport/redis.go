package testsupport

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a redis-server owned by one test.
type Redis struct {
	Addr string
	// URL is a redis:// URL for db 0 of this server.
	URL    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// RedisOption adjusts the server's command line.
type RedisOption func(*[]string)

// RedisPassword starts the server with requirepass.
func RedisPassword(pw string) RedisOption {
	return func(args *[]string) { *args = append(*args, "--requirepass", pw) }
}

// RedisArgs adds command-line arguments (e.g. "--maxmemory", "3mb").
func RedisArgs(args ...string) RedisOption {
	return func(a *[]string) { *a = append(*a, args...) }
}

// StartRedis starts redis-server on a free loopback port, waits until it
// answers PING and stops it when the test ends. If the port was taken
// between choosing it and redis binding it (FreePort cannot hold it), the
// server exits at once and StartRedis tries again on another port.
func StartRedis(t testing.TB, opts ...RedisOption) *Redis {
	t.Helper()
	var lastErr string
	for range 5 {
		r, errText := startRedis(t, opts)
		if r != nil {
			return r
		}
		lastErr = errText
	}
	t.Fatalf("redis-server did not start after 5 tries:\n%s", lastErr)
	return nil
}

func startRedis(t testing.TB, opts []RedisOption) (*Redis, string) {
	t.Helper()
	bin := LookPath(t, "redis-server")
	dir := t.TempDir()
	port := FreePort(t)
	args := []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--dir", dir, "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--protected-mode", "no", "--loglevel", "warning",
	}
	for _, o := range opts {
		o(&args)
	}
	cmd := exec.Command(bin, args...)
	logPath := filepath.Join(dir, "redis.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
		_ = logf.Close()
	}
	r := &Redis{Addr: fmt.Sprintf("127.0.0.1:%d", port), cmd: cmd, exited: exited}
	r.URL = "redis://" + r.Addr + "/0"
	pw := ""
	for i, a := range args {
		if a == "--requirepass" && i+1 < len(args) {
			pw = args[i+1]
		}
	}
	c := redis.NewClient(&redis.Options{Addr: r.Addr, Password: pw, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			_ = logf.Close()
			return nil, fmt.Sprintf("redis-server on %s exited:\n%s", r.Addr, log)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			t.Cleanup(stop)
			return r, ""
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			stop()
			t.Fatalf("redis-server on %s did not answer: %v\n%s", r.Addr, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Client returns a go-redis client for this server, closed at cleanup.
func (r *Redis) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Stop kills the server now (for tests of an unreachable Redis).
func (r *Redis) Stop() {
	_ = r.cmd.Process.Kill()
	<-r.exited
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// LookPath finds a binary the suite needs or fails the test with what to install.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found in PATH: run `make test` (it installs it as root) or `apt-get install -y %s`", name, debianPackage(name))
	}
	return p
}

func debianPackage(bin string) string {
	switch bin {
	case "redis-server":
		return "redis-server"
	case "prometheus", "promtool":
		return "prometheus"
	case "chromium":
		return "chromium"
	}
	return bin
}

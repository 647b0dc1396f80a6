package testsupport

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a redis-server owned by one test. It can be stopped and
// started again on the same port and directory, so its persistence (AOF)
// carries data across a restart.
type Redis struct {
	Addr string
	// URL is a redis:// URL for db 0 of this server.
	URL string
	// Dir is the server's working directory (AOF and RDB files, redis.log).
	Dir string

	args     []string
	password string
	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	logf     *os.File
}

// RedisOption adjusts the server's command line.
type RedisOption func(*[]string)

// RedisPassword starts the server with requirepass.
func RedisPassword(pw string) RedisOption {
	return func(args *[]string) { *args = append(*args, "--requirepass", pw) }
}

// RedisArgs adds command-line arguments, which override the defaults
// ("--appendonly", "yes", "--appendfsync", "always").
func RedisArgs(a ...string) RedisOption {
	return func(args *[]string) { *args = append(*args, a...) }
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
	r := &Redis{Addr: fmt.Sprintf("127.0.0.1:%d", port), Dir: dir, args: args}
	r.URL = "redis://" + r.Addr + "/0"
	for i, a := range args {
		if a == "--requirepass" && i+1 < len(args) {
			r.password = args[i+1]
		}
	}
	if errText := r.start(t); errText != "" {
		return nil, errText
	}
	t.Cleanup(r.Stop)
	return r, ""
}

// start runs the server with r's arguments and waits until it answers
// PING; it returns the server's log when it exited instead.
func (r *Redis) start(t testing.TB) string {
	t.Helper()
	bin := LookPath(t, "redis-server")
	logPath := filepath.Join(r.Dir, "redis.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, r.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // see StartProcess
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	r.mu.Lock()
	r.cmd, r.exited, r.logf = cmd, exited, logf
	r.mu.Unlock()

	c := redis.NewClient(&redis.Options{Addr: r.Addr, Password: r.password, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			r.Stop()
			return fmt.Sprintf("redis-server on %s exited:\n%s", r.Addr, log)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return ""
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			r.Stop()
			t.Fatalf("redis-server on %s did not answer: %v\n%s", r.Addr, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Client returns a go-redis client for this server, closed at cleanup.
func (r *Redis) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr, Password: r.password})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Stop kills the server now (SIGKILL: a crash, for tests of an
// unreachable Redis) and waits for it to exit. Stopping a stopped server
// does nothing.
func (r *Redis) Stop() { r.signal(syscall.SIGKILL) }

// Shutdown stops the server as an operator or orchestrator would (SIGTERM:
// Redis flushes its AOF and exits) and waits for it to exit.
func (r *Redis) Shutdown() { r.signal(syscall.SIGTERM) }

// Pause freezes the server (SIGSTOP) until Resume: connections stay open
// and commands hang, as on a stalled host.
func (r *Redis) Pause() { r.mu.Lock(); _ = r.cmd.Process.Signal(syscall.SIGSTOP); r.mu.Unlock() }

// Resume undoes Pause.
func (r *Redis) Resume() { r.mu.Lock(); _ = r.cmd.Process.Signal(syscall.SIGCONT); r.mu.Unlock() }

func (r *Redis) signal(sig syscall.Signal) {
	r.mu.Lock()
	cmd, exited, logf := r.cmd, r.exited, r.logf
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
	default:
		_ = cmd.Process.Signal(sig)
		_ = cmd.Process.Signal(syscall.SIGCONT) // a paused server must run to exit
		<-exited
	}
	_ = logf.Close()
}

// Restart starts the stopped server again on the same port, directory and
// arguments (with its AOF, if it had one), and waits until it answers.
func (r *Redis) Restart(t testing.TB) {
	t.Helper()
	r.Stop() // no-op when it is already down
	if errText := r.start(t); errText != "" {
		t.Fatalf("restart redis-server: %s", errText)
	}
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
	case "redis-server", "redis-sentinel":
		return bin
	case "redis-cli":
		return "redis-tools"
	case "prometheus", "promtool":
		return "prometheus"
	case "chromium":
		return "chromium"
	}
	return bin
}

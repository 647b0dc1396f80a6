package testsupport

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RepoRoot returns the module root (the directory holding the root go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	buildMu    sync.Mutex
	buildCache = map[string]string{}
)

// BuildBinary builds taskstack's ./cmd/<name> once per test binary (with
// -race when the tests run with it) and returns its path. Binaries go to
// one cache folder, .cache/testbin at the module root, reused across runs
// and removed by `make clean`: nothing is left in /tmp. Each build writes a
// temporary file and renames it into place, so packages building the same
// binary at once never see half a file.
func BuildBinary(t testing.TB, name string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := buildCache[name]; ok {
		return p
	}
	dir := filepath.Join(RepoRoot(t), ".cache", "testbin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	args := []string{"build"}
	if raceEnabled {
		out += "-race"
		args = append(args, "-race")
	}
	tmp := fmt.Sprintf("%s.tmp-%d", out, os.Getpid())
	args = append(args, "-o", tmp, "./cmd/"+name)
	cmd := exec.Command("go", args...)
	cmd.Dir = RepoRoot(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		t.Fatalf("go build ./cmd/%s: %v\n%s", name, err, b)
	}
	if err := os.Rename(tmp, out); err != nil {
		t.Fatal(err)
	}
	buildCache[name] = out
	return out
}

// Process is a running binary whose output is kept for assertions.
type Process struct {
	Name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

type lockedWriter struct{ p *Process }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.out.Write(b)
}

// StartProcess runs bin with exactly env (plus PATH and HOME) and kills it
// at cleanup, logging its output if the test failed.
func StartProcess(t testing.TB, bin string, env map[string]string, args ...string) *Process {
	t.Helper()
	p := &Process{Name: filepath.Base(bin), done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = lockedWriter{p}, lockedWriter{p}
	// Killed with the test binary too: a package that hits go test's
	// -timeout panics without running cleanups, and must not leave its
	// servers running.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// A child of the binary that keeps its output pipe open must not hold
	// Wait (and the cleanup) once the binary is gone.
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("--- output of %s:\n%s", p.Name, p.Output())
		}
	})
	return p
}

// Output returns what the process wrote so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Wait waits up to timeout for the process to exit and returns its exit code.
func (p *Process) Wait(timeout time.Duration) (int, error) {
	select {
	case <-p.done:
		if p.cmd.ProcessState == nil {
			return -1, p.err
		}
		return p.cmd.ProcessState.ExitCode(), nil
	case <-time.After(timeout):
		return -1, fmt.Errorf("%s still running after %s", p.Name, timeout)
	}
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// WaitHTTP polls url until it answers 200 or the process exits or timeout passes.
func WaitHTTP(t testing.TB, p *Process, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if p != nil && p.Exited() {
			t.Fatalf("%s exited before %s answered:\n%s", p.Name, url, p.Output())
		}
		if time.Now().After(deadline) {
			out := ""
			if p != nil {
				out = p.Output()
			}
			t.Fatalf("%s did not answer 200 within %s (last error %v)\n%s", url, timeout, err, strings.TrimSpace(out))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Eventually polls cond every 50ms until it returns true or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// LogBuffer is an io.Writer for a logger under test: it keeps every line
// for assertions and passes it on to t.Log.
type LogBuffer struct {
	t     testing.TB
	mu    sync.Mutex
	lines []string
	done  bool // the test ended: t.Log would panic
}

// NewLogBuffer returns an empty LogBuffer logging to t.
func NewLogBuffer(t testing.TB) *LogBuffer {
	b := &LogBuffer{t: t}
	t.Cleanup(func() {
		b.mu.Lock()
		b.done = true
		b.mu.Unlock()
	})
	return b
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for l := range strings.SplitSeq(strings.TrimRight(string(p), "\n"), "\n") {
		b.lines = append(b.lines, l)
		if !b.done {
			b.t.Log(l)
		}
	}
	return len(p), nil
}

// Lines returns the lines written so far that contain every one of subs.
func (b *LogBuffer) Lines(subs ...string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, l := range b.lines {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// Refusal runs run under a context that ends after within, for a call that
// is expected to refuse (return an error) at once. If run is still going
// when the context ends, the test fails right there, naming what, instead
// of hanging until go test's global timeout.
func Refusal(t testing.TB, within time.Duration, what string, run func(ctx context.Context) error) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		// run got the cancel; give it a moment to wind down.
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		t.Fatalf("%s: no refusal within %s: it started instead", what, within)
		return nil
	}
}

// HeldPort returns a loopback address whose port this test holds open
// until it ends: nothing else, root included, can bind it meanwhile.
func HeldPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	heldMu.Lock()
	held[ln.Addr().String()] = ln
	heldMu.Unlock()
	return ln.Addr().String()
}

// Release closes the listener HeldPort keeps on addr, for a test that now
// wants the code under test to bind it.
func Release(t testing.TB, addr string) {
	t.Helper()
	heldMu.Lock()
	defer heldMu.Unlock()
	if ln, ok := held[addr]; ok {
		_ = ln.Close()
		delete(held, addr)
	}
}

var (
	heldMu sync.Mutex
	held   = map[string]net.Listener{}
)

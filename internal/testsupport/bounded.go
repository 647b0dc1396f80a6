package testsupport

import (
	"context"
	"net/http"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Every wait in a test has a bound: when the code under test misbehaves
// (a handler that never answers, a goroutine that never sends, a process
// that never exits), the test fails within seconds, naming what it waited
// for, instead of hanging until go test's -timeout kills the whole package.

// RequestTimeout bounds one HTTP request made with HTTPClient, reading the
// body included.
const RequestTimeout = 20 * time.Second

// HTTPClient returns a client whose requests end after RequestTimeout.
// Tests use it instead of http.DefaultClient, http.Get and http.Post, which
// wait forever for a server that accepts and never answers.
func HTTPClient() *http.Client { return &http.Client{Timeout: RequestTimeout} }

// Receive returns the next value sent on ch, or fails the test, naming
// what, if none comes within d (a closed channel gives its zero value, as
// a plain receive does).
func Receive[T any](t testing.TB, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out after %s waiting for %s", d, what)
	}
	var zero T
	return zero
}

// Within calls wait (a sync.WaitGroup's Wait, say) and fails the test,
// naming what, if it has not returned after d. The call is left blocked
// in its goroutine: the test has failed, and goleak names it.
func Within(t testing.TB, d time.Duration, what string, wait func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { wait(); close(done) }()
	Receive(t, done, d, what)
}

// Command is exec.Command for a process the test waits for (a tool, a
// script, a binary's subcommand): it is killed when it runs past d or
// when the test ends, and the test's log says which. Like every process
// testsupport starts, it is also killed if the test binary dies first
// (go test's -timeout), so nothing outlives the run.
func Command(t testing.TB, d time.Duration, name string, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		if ctx.Err() == context.DeadlineExceeded {
			t.Logf("%s still running after %s: killed", name, d)
		}
		return cmd.Process.Kill()
	}
	// Children that keep the output pipes open (a shell's background job)
	// must not hold Wait after the kill.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

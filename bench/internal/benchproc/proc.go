// Package benchproc runs the processes a benchmark command measures (the
// binaries under test, a seed app, its own redis-server), each with its
// output in a log file, and reads their CPU time and memory from /proc.
package benchproc

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Spec is a process to start.
type Spec struct {
	// Name names the process in error messages; empty is the base name of
	// Bin.
	Name string
	// Bin is the executable, Args its arguments.
	Bin  string
	Args []string
	// Env is the environment after PATH, which is the only variable the
	// process inherits.
	Env []string
	// Log is the file its stdout and stderr go to, created or truncated.
	Log string
	// OwnGroup puts the process in its own process group, so that a Ctrl-C
	// in the terminal reaches only the benchmark, which then stops its
	// processes in order.
	OwnGroup bool
}

// Proc is a process a benchmark started, output to a log file. The
// benchmark stops every Proc itself (Stop), also when a measurement fails.
type Proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan error
}

// Start starts the process s describes.
func Start(s Spec) (*Proc, error) {
	f, err := os.Create(s.Log)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(s.Bin, s.Args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, s.Env...)
	cmd.Stdout, cmd.Stderr = f, f
	if s.OwnGroup {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	name, what := s.Name, s.Name
	if name == "" {
		name, what = filepath.Base(s.Bin), s.Bin
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", what, err)
	}
	p := &Proc{name: name, cmd: cmd, log: f, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// LogPath is the path of the process's log file.
func (p *Proc) LogPath() string { return p.log.Name() }

// WaitHTTP polls url until it answers 200. If the process exits first, the
// error is an *ExitedError with the end of its log.
func (p *Proc) WaitHTTP(url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			p.done <- err
			return &ExitedError{fmt.Errorf("%s exited before %s answered: %v (log %s):\n%s", p.name, url, err, p.log.Name(), logTail(p.log.Name()))}
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s: %s did not answer within %s (log %s)", p.name, url, timeout, p.log.Name())
}

// ExitedError is a process that exited before it answered: on a shared
// machine, most often a port FreeAddr picked and someone else took first.
type ExitedError struct{ error }

// Unwrap is the underlying error.
func (e *ExitedError) Unwrap() error { return e.error }

// logTail is the end of a log, for an error message.
func logTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 1500 {
		b = b[len(b)-1500:]
	}
	return string(b)
}

// PeakRSS is VmHWM, the process's peak resident set, in MiB.
func (p *Proc) PeakRSS() float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// CPUSeconds is the user+system CPU time the process used so far.
func (p *Proc) CPUSeconds() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// Stop sends SIGTERM and waits; it kills the process after 15 s.
func (p *Proc) Stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.log.Close()
}

// FreeAddr is a 127.0.0.1 address with a port free at the time of the
// call.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Parallel calls do for i from 0 to n-1 from workers goroutines, each
// taking the next i. A goroutine stops at its first error; Parallel
// returns when all have stopped, with the first error sent, if any.
func Parallel(n, workers int, do func(i int64) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if err := do(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// ModuleRoot is the directory of the go.mod of the module the command runs
// in; name names the command in the error when it runs outside one.
func ModuleRoot(name string) (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run %s from inside the taskstack module", name)
	}
	return filepath.Dir(mod), nil
}

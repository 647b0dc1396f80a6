package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"taskstack/bench/internal/benchproc"
	"taskstack/internal/store"
	"taskstack/internal/tasks"
)

// load is one hey run: its throughput and latency, and the CPU the server
// used per request meanwhile.
type load struct {
	rps, p50, p99 float64 // req/s, ms, ms
	cpuPerReq     float64 // µs of the server's CPU per request (chain)
}

// heyRun is the request hey repeats.
type heyRun struct {
	url, method, body string
}

var (
	heyRPS    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	heyPct    = regexp.MustCompile(`(?m)^\s+(50|99)% in ([0-9.]+) secs`)
	heyStatus = regexp.MustCompile(`(?m)^\s+\[(\d+)\]\s+(\d+) responses`)
)

// hey runs `hey -z d -c conns` and fails on any answer but 200 (after
// redirects) and on any error. server is the process whose CPU is counted.
func hey(ctx context.Context, h heyRun, d time.Duration, conns int, server *benchproc.Proc) (load, error) {
	args := []string{"-z", d.String(), "-c", strconv.Itoa(conns)}
	if h.method != "" {
		args = append(args, "-m", h.method, "-T", "application/x-www-form-urlencoded", "-d", h.body)
	}
	args = append(args, h.url)
	cpu0 := server.CPUSeconds()
	out, err := exec.CommandContext(ctx, "hey", args...).CombinedOutput()
	cpu := server.CPUSeconds() - cpu0
	if err != nil {
		return load{}, fmt.Errorf("hey %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	s := string(out)
	if strings.Contains(s, "Error distribution") {
		return load{}, fmt.Errorf("hey %s: errors:\n%s", h.url, s)
	}
	var l load
	var total int
	for _, m := range heyStatus.FindAllStringSubmatch(s, -1) {
		n, _ := strconv.Atoi(m[2])
		if m[1] != "200" {
			return load{}, fmt.Errorf("hey %s: %s answers with status %s:\n%s", h.url, m[2], m[1], s)
		}
		total += n
	}
	m := heyRPS.FindStringSubmatch(s)
	if m == nil || total == 0 {
		return load{}, fmt.Errorf("hey %s: no results:\n%s", h.url, s)
	}
	l.rps, _ = strconv.ParseFloat(m[1], 64)
	for _, m := range heyPct.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		if m[1] == "50" {
			l.p50 = v * 1000
		} else {
			l.p99 = v * 1000
		}
	}
	l.cpuPerReq = cpu / float64(total) * 1e6
	return l, nil
}

// seedTasks stores n pending demo:echo tasks round-robin on the three
// queues through the task store, as the app would, from 16 goroutines.
func seedTasks(ctx context.Context, st *store.Store, n int) error {
	cat := tasks.NewCatalogue()
	queues := tasks.Queues()
	return benchproc.Parallel(n, 16, func(i int64) error {
		p, err := cat.Prepare(tasks.Request{Type: tasks.TypeEcho, Payload: []byte(`{"arg":"x","sleep":"0s"}`), Queue: queues[i%int64(len(queues))]})
		if err == nil {
			_, err = st.Enqueue(ctx, p)
		}
		return err
	})
}

// viewers holds n live views of the page (GET /api/v1/events, the page's
// default list) open for hold, and answers the Redis commands per second
// processed meanwhile (the benchmark's own two INFO calls left out). Every
// viewer must have its first snapshot before the count starts.
func viewers(ctx context.Context, base string, rs *benchproc.Redis, n int, hold time.Duration) (float64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true}}
	defer client.CloseIdleConnections()
	var ready, snapshots atomic.Int64
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/events", nil)
			req.Header.Set("Accept", "text/event-stream")
			resp, err := client.Do(req)
			if err != nil {
				if ctx.Err() == nil {
					errs <- err
				}
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs <- fmt.Errorf("events: status %d", resp.StatusCode)
				return
			}
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 64<<10), 4<<20)
			first := true
			for sc.Scan() {
				if sc.Text() == "event: snapshot" {
					snapshots.Add(1)
					if first {
						ready.Add(1)
						first = false
					}
				}
			}
		})
	}
	defer wg.Wait()
	deadline := time.Now().Add(15 * time.Second)
	for ready.Load() < int64(n) {
		select {
		case err := <-errs:
			return 0, err
		default:
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("only %d of %d viewers got a snapshot within 15s", ready.Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c0, err := rs.CommandsProcessed(ctx)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	select {
	case <-time.After(hold):
	case <-ctx.Done():
		return 0, ctx.Err()
	case err := <-errs:
		return 0, err
	}
	c1, err := rs.CommandsProcessed(ctx)
	if err != nil {
		return 0, err
	}
	elapsed := time.Since(start).Seconds()
	cancel()
	return float64(c1-c0-1) / elapsed, nil
}

// idleCommands is the Redis commands per second with the app idle: its own
// background work (queue registration, the capacity watch).
func idleCommands(ctx context.Context, rs *benchproc.Redis, d time.Duration) (float64, error) {
	c0, err := rs.CommandsProcessed(ctx)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	c1, err := rs.CommandsProcessed(ctx)
	if err != nil {
		return 0, err
	}
	return float64(c1-c0-1) / time.Since(start).Seconds(), nil
}

var errInterrupted = errors.New("interrupted")

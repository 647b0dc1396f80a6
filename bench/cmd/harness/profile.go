package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// profilePass builds every binary again with -tags pprof (which adds
// net/http/pprof to taskstack's admin port and to the raw baselines) and
// takes CPU profiles of both stacks under the same loads as the rounds:
// the app under wrk, the worker while it drains a backlog. Profiles, the
// binaries they came from and `go tool pprof -top` summaries go to out.
func profilePass(ctx context.Context, o options, root, dir, out string, sk *sink, tp *sdktrace.TracerProvider, starts *producerStarts) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	pdir := filepath.Join(dir, "pprof")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		return err
	}
	fmt.Println("profiles: building with -tags pprof")
	bins, _, err := build(ctx, root, pdir, "pprof")
	if err != nil {
		return err
	}
	b, err := newBench(ctx, o, bins, dir, sk, tp, starts, "profile", false)
	if err != nil {
		return err
	}
	defer b.close()
	for _, k := range []string{kindTS, kindRaw} {
		name := map[string]string{kindTS: "app", kindRaw: "rawapp"}[k]
		if err := b.profileHTTP(ctx, k, filepath.Join(out, name+".pprof")); err != nil {
			return err
		}
		if err := copyFile(bins[name], filepath.Join(out, name)); err != nil {
			return err
		}
	}
	for _, k := range []string{kindTS, kindRaw} {
		name := map[string]string{kindTS: "worker", kindRaw: "rawworker"}[k]
		if err := b.profileWorker(ctx, k, filepath.Join(out, name+".pprof")); err != nil {
			return err
		}
		if err := copyFile(bins[name], filepath.Join(out, name)); err != nil {
			return err
		}
	}
	for _, name := range []string{"app", "rawapp", "worker", "rawworker"} {
		top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=25",
			filepath.Join(out, name), filepath.Join(out, name+".pprof")).CombinedOutput()
		if err != nil {
			return fmt.Errorf("go tool pprof %s: %w\n%s", name, err, top)
		}
		if err := os.WriteFile(filepath.Join(out, name+".top.txt"), top, 0o644); err != nil {
			return err
		}
		fmt.Printf("\n== %s ==\n%s", name, top)
	}
	fmt.Println("profiles in", out)
	return nil
}

// profileHTTP runs wrk against POST /api/v1/tasks and profiles the app for
// the load's duration less a second at each end.
func (b *bench) profileHTTP(ctx context.Context, kind, path string) error {
	if err := b.redis.Flush(ctx); err != nil {
		return err
	}
	app, base, err := b.startApp(kind)
	if err != nil {
		return err
	}
	defer app.Stop()
	script := filepath.Join(b.dir, "post.lua")
	if err := os.WriteFile(script, []byte(wrkScript), 0o644); err != nil {
		return err
	}
	url := base + "/api/v1/tasks"
	if _, err := runWrk(ctx, script, url, b.o.conns, b.o.httpWarmup); err != nil {
		return err
	}
	secs := max(1, int(b.o.httpDur.Seconds())-2)
	prof := make(chan error, 1)
	go func() {
		time.Sleep(time.Second)
		prof <- fetchProfile(ctx, app.url, secs, path)
	}()
	r, err := runWrk(ctx, script, url, b.o.conns, b.o.httpDur)
	if err != nil {
		return err
	}
	if err := <-prof; err != nil {
		return err
	}
	fmt.Printf("  %-9s profiled http %8.0f req/s  p99 %6.2f ms (%ds profile)\n", kind, r.rps, r.p99, secs)
	return nil
}

// profileWorker enqueues twice the processing phase's tasks on the three
// queues, starts the worker and profiles its first seconds of draining.
func (b *bench) profileWorker(ctx context.Context, kind, path string) error {
	if err := b.redis.Flush(ctx); err != nil {
		return err
	}
	n := 2 * b.o.tasks
	if err := b.prefill(ctx, kind, threeQueues, n); err != nil {
		return err
	}
	w, err := b.startWorker(kind, threeQueues, loops{servers: 1}, b.o.checkInterval)
	if err != nil {
		return err
	}
	defer w.Stop()
	if err := fetchProfile(ctx, w.url, 3, path); err != nil {
		return err
	}
	pending, active, err := b.backlog(ctx, threeQueues)
	if err != nil {
		return err
	}
	fmt.Printf("  %-9s profiled worker: %d of %d tasks left after the 3s profile\n", kind, pending+active, n)
	return nil
}

func fetchProfile(ctx context.Context, base string, secs int, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profile %s: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("profile %s: %s: %s", base, resp.Status, strings.TrimSpace(string(msg)))
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}

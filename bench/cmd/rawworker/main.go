// Command rawworker is the benchmark's baseline for the worker: bare
// asynq.Servers with the same queues, concurrency and TaskCheckInterval as
// taskstack's worker, and a handler doing demo:echo's work (decode the
// payload, write "prefix___"+arg as the result) without middleware, metrics,
// tracing or logs. Only tasks carrying the harness's "bench-enqueued-at"
// header (the latency phase) are timed. It is not part of taskstack.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
)

// HeaderEnqueuedAt carries unix nanos, like taskstack's own header.
const HeaderEnqueuedAt = "bench-enqueued-at"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "rawworker:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	queues := map[string]int{}
	for part := range strings.SplitSeq(getenv("QUEUES"), ",") {
		name, w, _ := strings.Cut(part, ":")
		n, err := strconv.Atoi(w)
		if err != nil {
			return fmt.Errorf("QUEUES: %q", part)
		}
		queues[name] = n
	}
	concurrency, err := strconv.Atoi(getenv("CONCURRENCY"))
	if err != nil {
		return fmt.Errorf("CONCURRENCY: %w", err)
	}
	servers, err := strconv.Atoi(getenv("SERVERS"))
	if err != nil {
		return fmt.Errorf("SERVERS: %w", err)
	}
	interval, err := time.ParseDuration(getenv("TASK_CHECK_INTERVAL"))
	if err != nil {
		return fmt.Errorf("TASK_CHECK_INTERVAL: %w", err)
	}

	var lat latencies
	mux := asynq.NewServeMux()
	mux.HandleFunc("demo:echo", func(ctx context.Context, t *asynq.Task) error {
		if v, ok := t.Headers()[HeaderEnqueuedAt]; ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				lat.add(time.Since(time.Unix(0, n)))
			}
		}
		var p struct {
			Arg   string `json:"arg"`
			Sleep string `json:"sleep"`
		}
		if err := json.Unmarshal(t.Payload(), &p); err != nil {
			return fmt.Errorf("payload: %w: %w", err, asynq.SkipRetry)
		}
		_, err := t.ResultWriter().Write([]byte("prefix___" + p.Arg))
		return err
	})
	var srvs []*asynq.Server
	for range servers {
		s := asynq.NewServer(asynq.RedisClientOpt{Addr: getenv("REDIS_ADDR")}, asynq.Config{
			Queues: queues, Concurrency: concurrency, TaskCheckInterval: interval,
			ShutdownTimeout: 10 * time.Second, LogLevel: asynq.WarnLevel,
		})
		if err := s.Start(mux); err != nil {
			return err
		}
		srvs = append(srvs, s)
	}
	admin := http.NewServeMux()
	admin.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	admin.HandleFunc("GET /latency", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(lat.snapshot())
	})
	handleProfiling(admin)
	srv := &http.Server{Addr: getenv("ADMIN_ADDR"), Handler: admin, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.ListenAndServe() }()
	<-ctx.Done()
	for _, s := range srvs {
		s.Stop()
	}
	for _, s := range srvs {
		s.Shutdown()
	}
	return srv.Close()
}

// latencies keeps every enqueue→start latency of the latency phase (a few
// thousand values), so the harness gets exact quantiles.
type latencies struct {
	mu sync.Mutex
	ns []int64
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.ns = append(l.ns, int64(d))
	l.mu.Unlock()
}

func (l *latencies) snapshot() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.ns)
	slices.Sort(out)
	return out
}

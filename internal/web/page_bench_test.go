package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace/noop"

	"taskstack/internal/store"
	"taskstack/internal/tasks"
	"taskstack/internal/testsupport"
)

// BenchmarkPage is the tutorial's own path through the whole handler
// (routes, the SERVER span, RED metrics, snapshots, templates) on a real
// redis-server, without the network: GET / and the no-JavaScript form's
// POST /tasks followed by its redirect, as `make bench-page` drives them
// with hey.
func BenchmarkPage(b *testing.B) {
	r := testsupport.StartRedis(b)
	rc := r.Client(b)
	tp := noop.NewTracerProvider()
	log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	st := store.New(store.Options{Redis: rc, Retention: time.Hour, Queues: tasks.Queues(), Tracer: tp, Propagator: propagation.TraceContext{}})
	app, err := New(Options{Store: st, Catalogue: tasks.NewCatalogue(), Logger: log, Registry: prometheus.NewRegistry(), Tracer: tp, Propagator: propagation.TraceContext{}})
	if err != nil {
		b.Fatal(err)
	}
	get := func(b *testing.B, target string) {
		w := &discardWriter{header: http.Header{}}
		app.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
		if w.code != http.StatusOK {
			b.Fatalf("GET %s: status %d", target, w.code)
		}
	}
	submit := func(b *testing.B) {
		req := httptest.NewRequest(http.MethodPost, "/tasks", strings.NewReader("arg=x&sleep=0s&queue=default"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := &discardWriter{header: http.Header{}}
		app.ServeHTTP(w, req)
		if w.code != http.StatusSeeOther {
			b.Fatalf("POST /tasks: status %d", w.code)
		}
		get(b, w.header.Get("Location"))
	}
	run := func(name string, f func(*testing.B)) {
		b.Run(name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f(b)
			}
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(16) // 32 goroutines on 2 cores, like hey -c 32
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					f(b)
				}
			})
		})
	}
	run("index/tasks=0", func(b *testing.B) { get(b, "/") })
	run("submit-form", submit)
	if err := rc.FlushAll(context.Background()).Err(); err != nil {
		b.Fatal(err)
	}
}

// discardWriter is a ResponseWriter that keeps the status and headers and
// drops the body, as a network connection would take it away.
type discardWriter struct {
	header http.Header
	code   int
}

func (w *discardWriter) Header() http.Header { return w.header }
func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *discardWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(b), nil
}

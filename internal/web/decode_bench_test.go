package web

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"taskstack/internal/store"
	"taskstack/internal/tasks"
	"taskstack/internal/telemetry"
	"taskstack/internal/testsupport"
)

const benchBody = `{"type":"demo:echo","payload":{"arg":"x","sleep":"0s"},"queue":"high"}`

// BenchmarkDecodeCreateTask is everything the app does with a POST
// /api/v1/tasks body before Redis: bounded strict JSON decode, durations,
// catalogue validation (type, payload, queue) and the task options.
func BenchmarkDecodeCreateTask(b *testing.B) {
	cat := tasks.NewCatalogue()
	for _, bc := range []struct{ name, body string }{
		{"valid", benchBody},
		{"invalid-sleep", `{"type":"demo:echo","payload":{"arg":"x","sleep":"soon"},"queue":"high"}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			body := []byte(bc.body)
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodPost, "/api/v1/tasks", nil)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				r.Body = io.NopCloser(bytes.NewReader(body))
				var req tasks.Request
				if err := decodeJSON(w, r, &req); err != nil {
					b.Fatal(err)
				}
				_, err := cat.Prepare(req)
				if (err != nil) != (bc.name != "valid") {
					b.Fatalf("Prepare: %v", err)
				}
			}
		})
	}
}

// BenchmarkCreateTaskHandler is the whole API handler (routes, server
// span, RED metrics, audit line, decode, validation, producer span, enqueue
// on a real redis-server) without the network, serially and from parallel
// clients.
func BenchmarkCreateTaskHandler(b *testing.B) {
	r := testsupport.StartRedis(b)
	for _, tc := range []struct {
		name string
		tp   trace.TracerProvider
	}{
		{"tracing=off", noop.NewTracerProvider()},
		{"tracing=10%", sdktrace.NewTracerProvider(
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.1))),
			sdktrace.WithBatcher(tracetest.NewNoopExporter()))},
	} {
		if sdk, ok := tc.tp.(*sdktrace.TracerProvider); ok {
			b.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
		}
		rc := r.Client(b)
		// JSON at info to a file through the process's log writer, as the
		// app logs: the audit line of every submission is written.
		f, err := os.Create(filepath.Join(b.TempDir(), "app.log"))
		if err != nil {
			b.Fatal(err)
		}
		lw := telemetry.NewLogWriter(f)
		b.Cleanup(func() { _ = lw.Close(); _ = f.Close() })
		log := telemetry.NewLogger(lw, "json", slog.LevelInfo)
		st := store.New(store.Options{Redis: rc, Retention: time.Hour, Queues: tasks.Queues(), Tracer: tc.tp, Propagator: propagation.TraceContext{}})
		app, err := New(Options{Store: st, Catalogue: tasks.NewCatalogue(), Logger: log, Registry: prometheus.NewRegistry(), Tracer: tc.tp, Propagator: propagation.TraceContext{}})
		if err != nil {
			b.Fatal(err)
		}
		serve := func(b *testing.B) {
			req := httptest.NewRequest(http.MethodPost, "/api/v1/tasks", bytes.NewReader([]byte(benchBody)))
			w := httptest.NewRecorder()
			app.ServeHTTP(w, req)
			if w.Code != http.StatusAccepted {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
		b.Run(tc.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				serve(b)
			}
		})
		b.Run(tc.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(16) // 32 goroutines on 2 cores, like the 32 connections of `make bench`
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					serve(b)
				}
			})
		})
		if err := rc.FlushAll(context.Background()).Err(); err != nil {
			b.Fatal(err)
		}
	}
}

package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"taskstack/internal/telemetry"
)

func TestLoggerStampsTraceIDs(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := telemetry.NewLogger(&buf, "json", nil)
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("t").Start(context.Background(), "op")
	log.InfoContext(ctx, "inside")
	span.End()
	log.InfoContext(context.Background(), "outside")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines: %q", lines)
	}
	var in, out map[string]any
	_ = json.Unmarshal([]byte(lines[0]), &in)
	_ = json.Unmarshal([]byte(lines[1]), &out)
	if in["trace_id"] != span.SpanContext().TraceID().String() || in["span_id"] != span.SpanContext().SpanID().String() {
		t.Errorf("inside a span: %v", in)
	}
	if _, ok := out["trace_id"]; ok {
		t.Errorf("outside a span: %v", out)
	}
	// Attributes and groups keep the trace stamping.
	buf.Reset()
	log.With("k", "v").WithGroup("g").InfoContext(ctx, "grouped", "a", 1)
	if !strings.Contains(buf.String(), `"trace_id":"`+span.SpanContext().TraceID().String()) {
		t.Errorf("With/WithGroup lost the trace: %s", buf.String())
	}
	var text bytes.Buffer
	telemetry.NewLogger(&text, "text", nil).InfoContext(ctx, "plain")
	if !strings.Contains(text.String(), "trace_id=") || strings.HasPrefix(text.String(), "{") {
		t.Errorf("text format: %s", text.String())
	}
}

func TestSetupTracing(t *testing.T) {
	t.Parallel()
	off, err := telemetry.SetupTracing(context.Background(), telemetry.TracingOptions{Service: "x"})
	if err != nil || off.Enabled() {
		t.Fatalf("no endpoint: %v, enabled %v", err, off.Enabled())
	}
	if _, ok := off.Provider.(noop.TracerProvider); !ok || off.Propagator == nil {
		t.Errorf("off: provider %T, propagator %v", off.Provider, off.Propagator)
	}
	// The propagator passes a caller's trace through even with tracing off.
	carrier := http.Header{}
	carrier.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	ctx := off.Propagator.Extract(context.Background(), propagationCarrier(carrier))
	if sc := trace.SpanContextFromContext(ctx); sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("extracted %v", sc)
	}
	for _, proto := range []string{"", "http/protobuf", "grpc"} {
		on, err := telemetry.SetupTracing(context.Background(), telemetry.TracingOptions{Endpoint: "http://127.0.0.1:1", Protocol: proto, Service: "x", Version: "1"})
		if err != nil || !on.Enabled() {
			t.Fatalf("protocol %q: %v", proto, err)
		}
		if _, ok := on.Provider.(*sdktrace.TracerProvider); !ok {
			t.Errorf("protocol %q: provider %T", proto, on.Provider)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // nothing to flush; an unreachable collector must not block
		_ = on.Shutdown(ctx)
	}
	if _, err := telemetry.SetupTracing(context.Background(), telemetry.TracingOptions{Endpoint: "http://x", Protocol: "udp"}); err == nil {
		t.Error("an unknown protocol was accepted")
	}
}

type propagationCarrier http.Header

func (c propagationCarrier) Get(k string) string { return http.Header(c).Get(k) }
func (c propagationCarrier) Set(k, v string)     { http.Header(c).Set(k, v) }
func (c propagationCarrier) Keys() []string {
	var out []string
	for k := range c {
		out = append(out, k)
	}
	return out
}

func TestRegistryAndHTTPMetrics(t *testing.T) {
	t.Parallel()
	reg := telemetry.NewRegistry(telemetry.Build{Version: "1.2.3"})
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var info string
	for _, f := range fams {
		if f.GetName() == "taskstack_build_info" && len(f.GetMetric()) == 1 {
			for _, l := range f.GetMetric()[0].GetLabel() {
				info += l.GetName() + "=" + l.GetValue() + " "
			}
		}
	}
	if !strings.Contains(info, "version=1.2.3") || !strings.Contains(info, "commit=unknown") {
		t.Errorf("taskstack_build_info labels %q", info)
	}
	m, err := telemetry.NewHTTPMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := telemetry.NewHTTPMetrics(reg); err == nil {
		t.Error("registering twice must be an error, not a panic")
	}
	h := m.Wrap("GET /x/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/x/missing" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	for _, p := range []string{"/x/1", "/x/2", "/x/missing"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, p, nil))
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("PURGE", "/x/1", nil))
	counts := map[string]float64{}
	fams, _ = reg.Gather()
	for _, f := range fams {
		if f.GetName() != "taskstack_http_requests_total" {
			continue
		}
		for _, mm := range f.GetMetric() {
			key := ""
			for _, l := range mm.GetLabel() {
				key += l.GetName() + "=" + l.GetValue() + ","
			}
			counts[key] = mm.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"code=200,method=GET,route=GET /x/{id},":   2,
		"code=404,method=GET,route=GET /x/{id},":   1,
		"code=200,method=OTHER,route=GET /x/{id},": 1,
	}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("requests{%s} = %v, want %v (all: %v)", k, counts[k], v, counts)
		}
	}
	if len(counts) != len(want) {
		t.Errorf("series %v: the raw path or method must never become a label", counts)
	}
}

func TestExemplarOnlyForSampledSpans(t *testing.T) {
	t.Parallel()
	if telemetry.Exemplar(context.Background()) != nil {
		t.Error("exemplar without a span")
	}
	sampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	ctx, span := sampled.Tracer("t").Start(context.Background(), "op")
	defer span.End()
	if ex := telemetry.Exemplar(ctx); ex["trace_id"] != span.SpanContext().TraceID().String() {
		t.Errorf("sampled span exemplar %v", ex)
	}
	dropped := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	ctx2, span2 := dropped.Tracer("t").Start(context.Background(), "op")
	defer span2.End()
	if telemetry.Exemplar(ctx2) != nil {
		t.Error("an exemplar pointing to a dropped trace")
	}
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Buckets: []float64{1}})
	telemetry.ObserveWithExemplar(ctx, h, 0.5)
	telemetry.ObserveWithExemplar(ctx2, h, 0.5)
	if n := testutil.CollectAndCount(h); n != 1 {
		t.Errorf("histogram series %d", n)
	}
}

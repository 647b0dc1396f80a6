package telemetry_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"taskstack/internal/telemetry"
)

// The app's SERVER span and RED metrics are what docs/observability.md
// promises (they replaced otelhttp's): span named by the route pattern,
// kind SERVER, the HTTP semantic conventions' attributes, the trace
// continued from traceparent, Error status on 5xx, and the request counter
// and duration histogram labelled by method, route and code.
func TestHTTPServerSpanAndMetrics(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	reg := prometheus.NewRegistry()
	s, err := telemetry.NewHTTPServer(reg, tp, propagation.TraceContext{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	const route = "POST /api/v1/tasks/{id}"
	mux.Handle(route, s.Route(route, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !trace.SpanFromContext(r.Context()).SpanContext().IsValid() {
			t.Error("the handler must see the server span in its context")
		}
		if r.PathValue("id") == "boom" {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte("hello"))
	})))

	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	req := httptest.NewRequest(http.MethodPost, "http://example.com:8080/api/v1/tasks/42", strings.NewReader("{}"))
	req.Header.Set("traceparent", parent)
	req.Header.Set("User-Agent", "test-agent")
	req.RemoteAddr = "10.0.0.7:5555"
	mux.ServeHTTP(httptest.NewRecorder(), req)
	mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/api/v1/tasks/boom", nil))

	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	ok, failed := spans[0], spans[1]
	if ok.Name() != route || ok.SpanKind() != trace.SpanKindServer {
		t.Errorf("span %q kind %v, want %q SERVER", ok.Name(), ok.SpanKind(), route)
	}
	if got := ok.SpanContext().TraceID().String(); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("trace %s: the request's traceparent must be continued", got)
	}
	if got := ok.Parent().SpanID().String(); got != "00f067aa0ba902b7" || !ok.Parent().IsRemote() {
		t.Errorf("parent %s (remote %v)", got, ok.Parent().IsRemote())
	}
	got := map[string]string{}
	for _, kv := range ok.Attributes() {
		got[string(kv.Key)] = kv.Value.String()
	}
	want := map[string]string{
		"http.request.method":       "POST",
		"http.route":                "/api/v1/tasks/{id}",
		"url.path":                  "/api/v1/tasks/42",
		"url.scheme":                "http",
		"server.address":            "example.com",
		"server.port":               "8080",
		"network.peer.address":      "10.0.0.7",
		"network.peer.port":         "5555",
		"client.address":            "10.0.0.7",
		"user_agent.original":       "test-agent",
		"network.protocol.version":  "1.1",
		"http.response.status_code": "202",
		"http.response.body.size":   "5",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("span attributes (-want +got):\n%s", diff)
	}
	if ok.Status().Code != codes.Unset {
		t.Errorf("2xx status %v", ok.Status())
	}
	if failed.Status().Code != codes.Error {
		t.Errorf("5xx status %v, want Error", failed.Status())
	}
	var errType string
	for _, kv := range failed.Attributes() {
		if kv.Key == "error.type" {
			errType = kv.Value.String()
		}
	}
	if errType != "500" {
		t.Errorf("5xx error.type %q, want 500", errType)
	}

	c, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	var observations uint64
	for _, f := range c {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			switch f.GetName() {
			case "taskstack_http_requests_total":
				counts[key] = m.GetCounter().GetValue()
			case "taskstack_http_request_duration_seconds":
				observations += m.GetHistogram().GetSampleCount()
			}
		}
	}
	wantCounts := map[string]float64{
		"taskstack_http_requests_total,code=202,method=POST,route=" + route: 1,
		"taskstack_http_requests_total,code=500,method=POST,route=" + route: 1,
	}
	if diff := cmp.Diff(wantCounts, counts); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if observations != 2 {
		t.Errorf("%d duration observations, want 2", observations)
	}
	if n := testutil.CollectAndCount(reg, "taskstack_http_request_duration_seconds"); n == 0 {
		t.Error("no duration series")
	}
}

// An unsampled request gets a non-recording span (nothing exported) and
// still its metrics.
func TestHTTPServerUnsampled(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.NeverSample()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	reg := prometheus.NewRegistry()
	s, err := telemetry.NewHTTPServer(reg, tp, propagation.TraceContext{})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Route("GET /x", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/x", nil))
	if n := len(rec.Ended()); n != 0 {
		t.Errorf("%d spans recorded for an unsampled request", n)
	}
	if n := testutil.CollectAndCount(reg, "taskstack_http_requests_total"); n != 1 {
		t.Errorf("%d request series, want 1", n)
	}
}

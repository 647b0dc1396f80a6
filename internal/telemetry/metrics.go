package telemetry

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
)

// Build identifies the running binary.
type Build struct {
	Version string
	Commit  string
}

// NewRegistry returns a registry with the Go and process collectors and
// taskstack_build_info. The Go collector adds go_gc_heap_live_bytes to its
// defaults: the heap the last collection found live, the one memory figure
// that does not depend on when it is read (the soak compares it before and
// after load, docs/reliability.md).
func NewRegistry(b Build) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
			collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "taskstack_build_info",
		Help: "Build of the running binary; always 1.",
	}, []string{"version", "commit", "goversion"})
	info.WithLabelValues(orUnknown(b.Version), orUnknown(b.Commit), runtime.Version()).Set(1)
	reg.MustRegister(info)
	return reg
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// MetricsHandler serves reg with OpenMetrics (and so exemplars) when the
// scraper asks for it.
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true, Registry: reg})
}

// Exemplar returns the trace_id exemplar for ctx, or nil when the span is
// not sampled (an exemplar pointing to a dropped trace is a dead link).
func Exemplar(ctx context.Context) prometheus.Labels {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() || !sc.IsSampled() {
		return nil
	}
	return prometheus.Labels{"trace_id": sc.TraceID().String()}
}

// ObserveWithExemplar observes v, attaching ctx's trace as exemplar.
func ObserveWithExemplar(ctx context.Context, o prometheus.Observer, v float64) {
	if ex := Exemplar(ctx); ex != nil {
		if eo, ok := o.(prometheus.ExemplarObserver); ok {
			eo.ObserveWithExemplar(v, ex)
			return
		}
	}
	o.Observe(v)
}

// HTTPMetrics are the RED metrics of an HTTP server.
//
// Hand-written rather than promhttp.InstrumentHandler*: promhttp writes the
// method label in lower case ("get"), where our dashboards, alerts and
// recording rules have always used the request's own "GET"; it resolves its
// label map on every request, where this resolves the route's series once;
// and it has no notion of the route pattern without currying per route.
type HTTPMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewHTTPMetrics registers taskstack_http_* on reg.
func NewHTTPMetrics(reg prometheus.Registerer) (*HTTPMetrics, error) {
	m := &HTTPMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "taskstack_http_requests_total",
			Help: "HTTP requests served, by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "taskstack_http_request_duration_seconds",
			Help:    "HTTP request duration, by method and route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method", "route"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("http metrics: %w", err)
		}
	}
	return m, nil
}

// Wrap instruments h with the metrics only (no span), labelled with its
// route pattern (never the raw path, which would make one series per task
// ID).
func (m *HTTPMetrics) Wrap(route string, h http.Handler) http.Handler {
	rm := m.route(route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := NewStatusRecorder(w)
		h.ServeHTTP(sw, r)
		rm.observe(r.Context(), r.Method, sw.Code(), time.Since(start))
	})
}

// StatusRecorder is a ResponseWriter that remembers the status code sent.
type StatusRecorder struct {
	http.ResponseWriter
	code        int
	written     int
	wroteHeader bool
}

// NewStatusRecorder wraps w; the code is 200 until a handler sets another.
func NewStatusRecorder(w http.ResponseWriter) *StatusRecorder {
	return &StatusRecorder{ResponseWriter: w, code: http.StatusOK}
}

// Code is the status code sent (or 200).
func (w *StatusRecorder) Code() int { return w.code }

func (w *StatusRecorder) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *StatusRecorder) Write(b []byte) (int, error) {
	w.wroteHeader = true
	n, err := w.ResponseWriter.Write(b)
	w.written += n
	return n, err
}

// Recorder returns w itself when it is a StatusRecorder already (an
// instrumented route's), else a new one around w: wrappers inside a route
// share one.
func Recorder(w http.ResponseWriter) *StatusRecorder {
	if sw, ok := w.(*StatusRecorder); ok {
		return sw
	}
	return NewStatusRecorder(w)
}

// Unwrap lets http.ResponseController reach Flush for server-sent events.
func (w *StatusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

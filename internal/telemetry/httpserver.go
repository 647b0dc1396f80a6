package telemetry

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// HTTPServer instruments the routes of an HTTP server: per request one
// SERVER span named by the route pattern (continuing the W3C trace context
// of the request) and the RED metrics of HTTPMetrics.
//
// Hand-written rather than otelhttp: otelhttp builds the span's dozen
// attributes, wraps the body and the ResponseWriter twice and computes
// metric attribute sets on every request, sampled or not, which cost the
// app about a fifth of its CPU per request at 10% sampling
// (docs/benchmarks.md). Here an unsampled request costs one non-recording
// span and two metric updates on series resolved once per route; a
// recorded span gets the HTTP semantic conventions' attributes (method,
// route, path, scheme, server and peer address, client address, user
// agent, protocol version, status code, response size, error.type for 5xx).
type HTTPServer struct {
	metrics *HTTPMetrics
	tracer  trace.Tracer
	prop    propagation.TextMapPropagator
}

// NewHTTPServer registers taskstack_http_* on reg; spans go to tp.
func NewHTTPServer(reg prometheus.Registerer, tp trace.TracerProvider, prop propagation.TextMapPropagator) (*HTTPServer, error) {
	m, err := NewHTTPMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &HTTPServer{metrics: m, tracer: tp.Tracer("taskstack/internal/telemetry/http"), prop: prop}, nil
}

// Route instruments h, served at the mux pattern route ("POST
// /api/v1/tasks"): the span name and the route label are the pattern,
// never the raw path.
func (s *HTTPServer) Route(route string, h http.Handler) http.Handler {
	rm := s.metrics.route(route)
	httpRoute := route
	if _, path, ok := strings.Cut(route, " "); ok {
		httpRoute = path // http.route has no method
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx := s.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := s.tracer.Start(ctx, route, trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start))
		recording := span.IsRecording()
		if recording {
			span.SetAttributes(requestAttributes(r, httpRoute)...)
		}
		sw := &StatusRecorder{ResponseWriter: w, code: http.StatusOK}
		defer func() {
			if recording {
				span.SetAttributes(semconv.HTTPResponseStatusCode(sw.code), semconv.HTTPResponseBodySize(sw.written))
				if sw.code >= 500 {
					span.SetStatus(codes.Error, "")
					span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(sw.code)))
				}
			}
			span.End()
		}()
		h.ServeHTTP(sw, r.WithContext(ctx))
		rm.observe(ctx, r.Method, sw.code, time.Since(start))
	})
}

// requestAttributes are the HTTP server span's attributes known before the
// handler runs.
func requestAttributes(r *http.Request, route string) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 12)
	method := boundedMethod(r.Method)
	if method == "OTHER" {
		attrs = append(attrs, semconv.HTTPRequestMethodOther, semconv.HTTPRequestMethodOriginal(r.Method))
	} else {
		attrs = append(attrs, semconv.HTTPRequestMethodKey.String(method))
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	attrs = append(attrs, semconv.URLScheme(scheme), semconv.HTTPRoute(route), semconv.URLPath(r.URL.Path))
	if host, port := splitHostPort(r.Host); host != "" {
		attrs = append(attrs, semconv.ServerAddress(host))
		if port > 0 {
			attrs = append(attrs, semconv.ServerPort(port))
		}
	}
	peer, peerPort := splitHostPort(r.RemoteAddr)
	if peer != "" {
		attrs = append(attrs, semconv.NetworkPeerAddress(peer))
		if peerPort > 0 {
			attrs = append(attrs, semconv.NetworkPeerPort(peerPort))
		}
	}
	client := peer
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		first, _, _ := strings.Cut(xff, ",")
		client = strings.TrimSpace(first)
	}
	if client != "" {
		attrs = append(attrs, semconv.ClientAddress(client))
	}
	if ua := r.UserAgent(); ua != "" {
		attrs = append(attrs, semconv.UserAgentOriginal(ua))
	}
	if r.ProtoMajor > 0 {
		v := strconv.Itoa(r.ProtoMajor)
		if r.ProtoMajor == 1 {
			v += "." + strconv.Itoa(r.ProtoMinor)
		}
		attrs = append(attrs, semconv.NetworkProtocolVersion(v))
	}
	return attrs
}

func splitHostPort(hostport string) (string, int) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport, -1
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return host, -1
	}
	return host, p
}

// methods are the method label's values; index len(methods) is OTHER.
var methods = [...]string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}

func methodIndex(m string) int {
	for i, k := range methods {
		if m == k {
			return i
		}
	}
	return len(methods)
}

func boundedMethod(m string) string {
	if i := methodIndex(m); i < len(methods) {
		return methods[i]
	}
	return "OTHER"
}

// routeMetrics are one route's series, resolved once: the request counter
// per method and status code as they appear (copy on write, read without a
// lock), the duration histogram per method.
type routeMetrics struct {
	m        *HTTPMetrics
	route    string
	duration [len(methods) + 1]prometheus.Observer

	mu       sync.Mutex
	requests atomic.Pointer[map[int]prometheus.Counter]
}

func (m *HTTPMetrics) route(route string) *routeMetrics {
	rm := &routeMetrics{m: m, route: route}
	for i := range rm.duration {
		method := "OTHER"
		if i < len(methods) {
			method = methods[i]
		}
		rm.duration[i] = m.duration.WithLabelValues(method, route)
	}
	empty := map[int]prometheus.Counter{}
	rm.requests.Store(&empty)
	return rm
}

func (rm *routeMetrics) observe(ctx context.Context, method string, code int, d time.Duration) {
	mi := methodIndex(method)
	rm.counter(mi, code).Inc()
	ObserveWithExemplar(ctx, rm.duration[mi], d.Seconds())
}

func (rm *routeMetrics) counter(mi, code int) prometheus.Counter {
	key := mi<<16 | code&0xffff
	if c, ok := (*rm.requests.Load())[key]; ok {
		return c
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	old := *rm.requests.Load()
	if c, ok := old[key]; ok {
		return c
	}
	method := "OTHER"
	if mi < len(methods) {
		method = methods[mi]
	}
	c := rm.m.requests.WithLabelValues(method, rm.route, strconv.Itoa(code))
	next := make(map[int]prometheus.Counter, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[key] = c
	rm.requests.Store(&next)
	return c
}

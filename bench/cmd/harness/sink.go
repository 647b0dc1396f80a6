package main

import (
	"compress/gzip"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// sink is a local OTLP/HTTP trace endpoint. It accepts every export and
// drops it, except that while a latency phase records, it keeps the start
// time of each CONSUMER span "process <queue>" by trace ID: with the
// producer's start time (known to the harness, which enqueued) that gives
// taskstack's exact enqueue→start latency for the sampled tasks.
type sink struct {
	srv      *http.Server
	addr     string
	requests atomic.Int64
	bytes    atomic.Int64

	mu        sync.Mutex
	recording bool
	starts    map[[16]byte]time.Time
}

func startSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{addr: ln.Addr().String(), starts: map[[16]byte]time.Time{}}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *sink) serve(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, "bad gzip", http.StatusBadRequest)
			return
		}
		defer zr.Close()
		body = zr
	}
	b, _ := io.ReadAll(body)
	s.requests.Add(1)
	s.bytes.Add(int64(len(b)))
	s.mu.Lock()
	rec := s.recording
	s.mu.Unlock()
	if rec {
		var req coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err == nil {
			s.keep(&req)
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func (s *sink) keep(req *coltrace.ExportTraceServiceRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				if sp.GetKind() != tracepb.Span_SPAN_KIND_CONSUMER || !strings.HasPrefix(sp.GetName(), "process ") {
					continue
				}
				var id [16]byte
				copy(id[:], sp.GetTraceId())
				s.starts[id] = time.Unix(0, int64(sp.GetStartTimeUnixNano()))
			}
		}
	}
}

// record starts (true) or stops keeping consumer span starts; starting
// forgets earlier ones.
func (s *sink) record(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recording = on
	if on {
		s.starts = map[[16]byte]time.Time{}
	}
}

func (s *sink) consumerStarts() map[[16]byte]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[[16]byte]time.Time, len(s.starts))
	for k, v := range s.starts {
		out[k] = v
	}
	return out
}

func (s *sink) close() { _ = s.srv.Close() }

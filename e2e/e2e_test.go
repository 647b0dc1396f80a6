package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"taskstack/internal/testsupport"
)

// otlpReceiver is an OTLP/HTTP trace endpoint that keeps what it receives.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []receivedSpan
	srv   *httptest.Server
}

type receivedSpan struct {
	service string
	name    string
	kind    tracepb.Span_SpanKind
	traceID string
	attrs   map[string]string
}

func startOTLP(t *testing.T) *otlpReceiver {
	t.Helper()
	rcv := &otlpReceiver{}
	rcv.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" {
			http.NotFound(w, r)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			gz, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = gz
		}
		raw, _ := io.ReadAll(body)
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(raw, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rcv.mu.Lock()
		for _, rs := range req.ResourceSpans {
			service := ""
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.Key == "service.name" {
					service = kv.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					attrs := map[string]string{}
					for _, kv := range s.Attributes {
						attrs[kv.Key] = kv.GetValue().GetStringValue()
					}
					rcv.spans = append(rcv.spans, receivedSpan{service, s.Name, s.Kind, hex.EncodeToString(s.TraceId), attrs})
				}
			}
		}
		rcv.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		_, _ = w.Write(b)
	}))
	t.Cleanup(rcv.srv.Close)
	return rcv
}

func (r *otlpReceiver) find(service, name string) []receivedSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []receivedSpan
	for _, s := range r.spans {
		if s.service == service && s.name == name {
			out = append(out, s)
		}
	}
	return out
}

// TestEndToEnd runs the real app and worker binaries: a task submitted
// through the API and one through the HTML form both complete with the
// tutorial's result; the trace crosses the processes; both /metrics carry
// the series with non-zero counts; a worker log line has the trace ID.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	otlp := startOTLP(t)
	s := startStack(t, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.srv.URL,
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_TRACES_SAMPLER":         "parentbased_always_on",
		"OTEL_BSP_SCHEDULE_DELAY":     "100",
	})

	api := submit(t, s.appURL, `{"type":"demo:echo","payload":{"arg":"from-api","sleep":"0s"},"queue":"high"}`)
	done := waitState(t, s.appURL, api.Links.Self, "completed", 30*time.Second)
	if done.Result == nil || *done.Result != "prefix___from-api" {
		t.Errorf("API task result = %v, want prefix___from-api", done.Result)
	}

	resp := submitForm(t, s.appURL, url.Values{"arg": {"from-form"}, "sleep": {"0s"}, "queue": {"low"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/?submitted=") {
		t.Fatalf("form POST: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	formID := strings.TrimPrefix(resp.Header.Get("Location"), "/?submitted=")
	waitState(t, s.appURL, "/api/v1/queues/low/tasks/"+formID, "completed", 30*time.Second)

	var finished struct {
		Tasks []struct {
			ID     string `json:"id"`
			Result string `json:"result"`
		} `json:"finished_tasks"`
	}
	getJSON(t, s.appURL+"/finished_tasks", &finished)
	results := map[string]string{}
	for _, ft := range finished.Tasks {
		results[ft.ID] = ft.Result
	}
	if results[api.ID] != "prefix___from-api" || results[formID] != "prefix___from-form" {
		t.Errorf("/finished_tasks = %+v", finished.Tasks)
	}

	// Invalid form input is shown again with the field's message, nothing enqueued.
	bad := submitForm(t, s.appURL, url.Values{"arg": {"x"}, "sleep": {"soon"}, "queue": {"high"}})
	if bad.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("invalid form: %d, want 422", bad.StatusCode)
	}

	// One trace from the app's HTTP request to the worker's process span.
	var traceID string
	testsupport.Eventually(t, 20*time.Second, "app and worker spans of the API task", func() bool {
		for _, srv := range otlp.find("app", "POST /api/v1/tasks") {
			for _, p := range otlp.find("worker", "process high") {
				if p.traceID == srv.traceID && p.attrs["messaging.message.id"] == api.ID {
					traceID = srv.traceID
					return true
				}
			}
		}
		return false
	})
	if sends := otlp.find("app", "send high"); len(sends) == 0 || sends[0].kind != tracepb.Span_SPAN_KIND_PRODUCER {
		t.Errorf("no producer span from the app: %+v", sends)
	}
	testsupport.Eventually(t, 5*time.Second, "a worker log line with the trace ID", func() bool {
		return strings.Contains(s.worker.Output(), `"trace_id":"`+traceID+`"`)
	})

	if code := getJSON(t, s.appURL+"/metrics", &struct{}{}); code != http.StatusNotFound {
		t.Errorf("the app's public port serves /metrics (%d): it belongs on APP_ADMIN_ADDR", code)
	}
	appMetrics := scrape(t, s.appAdminURL+"/metrics")
	workerMetrics := scrape(t, s.adminURL+"/metrics")
	for _, c := range []struct {
		families map[string]*dto.MetricFamily
		name     string
		labels   map[string]string
	}{
		{appMetrics, "taskstack_http_requests_total", map[string]string{"method": "POST", "route": "POST /api/v1/tasks", "code": "202"}},
		{appMetrics, "taskstack_http_request_duration_seconds", map[string]string{"method": "POST", "route": "POST /api/v1/tasks"}},
		{appMetrics, "taskstack_tasks_enqueued_total", map[string]string{"type": "demo:echo", "queue": "high", "outcome": "ok"}},
		{appMetrics, "taskstack_tasks_enqueued_total", map[string]string{"type": "demo:echo", "queue": "high", "outcome": "rejected"}},
		{appMetrics, "taskstack_build_info", map[string]string{}},
		{workerMetrics, "taskstack_tasks_processed_total", map[string]string{"type": "demo:echo", "queue": "high", "outcome": "success"}},
		{workerMetrics, "taskstack_task_duration_seconds", map[string]string{"type": "demo:echo", "queue": "high"}},
		{workerMetrics, "taskstack_task_queue_wait_seconds", map[string]string{"type": "demo:echo", "queue": "low"}},
		{workerMetrics, "taskstack_build_info", map[string]string{}},
	} {
		if v := value(c.families[c.name], c.labels); v <= 0 {
			t.Errorf("%s%v = %v, want > 0", c.name, c.labels, v)
		}
	}
	if _, ok := workerMetrics["taskstack_tasks_in_progress"]; !ok {
		t.Error("worker lacks taskstack_tasks_in_progress")
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if appMetrics[name] == nil || workerMetrics[name] == nil {
			t.Errorf("%s missing from a /metrics", name)
		}
	}
	// No raw path (task IDs) ever becomes a route label.
	for _, m := range appMetrics["taskstack_http_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "route" && strings.Contains(l.GetValue(), api.ID) {
				t.Errorf("route label carries a task ID: %s", l.GetValue())
			}
		}
	}
	// Histograms carry trace exemplars in the OpenMetrics exposition.
	om := fetch(t, s.adminURL+"/metrics", "application/openmetrics-text; version=1.0.0")
	if !strings.Contains(om, `taskstack_task_duration_seconds_bucket`) || !strings.Contains(om, `# {trace_id="`) {
		t.Error("OpenMetrics exposition lacks trace_id exemplars")
	}
}

func fetch(t *testing.T, u, accept string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := testsupport.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func scrape(t *testing.T, u string) map[string]*dto.MetricFamily {
	t.Helper()
	body := fetch(t, u, "text/plain")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewBufferString(body))
	if err != nil {
		t.Fatalf("parse %s: %v", u, err)
	}
	return fams
}

// value sums the counter, gauge or histogram count of the series matching labels.
func value(f *dto.MetricFamily, labels map[string]string) float64 {
	var sum float64
	for _, m := range f.GetMetric() {
		match := true
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

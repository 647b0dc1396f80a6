package monitor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"taskstack/internal/monitor"
	"taskstack/internal/testsupport"
)

// The nine fields asynqmon's UI reads from GET <root>/api/metrics.
var metricsFields = []string{
	"queue_size", "queue_latency_seconds", "queue_memory_usage_approx_bytes",
	"tasks_processed_per_second", "tasks_failed_per_second", "error_rate",
	"pending_tasks_by_queue", "retry_tasks_by_queue", "archived_tasks_by_queue",
}

// fakePrometheus answers query_range with an empty matrix, or with status
// code when it is set, after waiting for release when it is set.
type fakePrometheus struct {
	mu      sync.Mutex
	queries []string
	status  int
	release chan struct{}
}

func (f *fakePrometheus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/prom/api/v1/query_range" {
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	f.queries = append(f.queries, r.URL.Query().Get("query"))
	status, release := f.status, f.release
	f.mu.Unlock()
	if release != nil {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if status != 0 {
		w.WriteHeader(status)
		fmt.Fprint(w, `{"status":"error","errorType":"bad_data","error":"parse error: unexpected thing"}`)
		return
	}
	fmt.Fprint(w, `{"status":"success","data":{"resultType":"matrix","result":[]}}`)
}

func TestPrometheusViewAgainstFake(t *testing.T) {
	t.Parallel()
	fake := &fakePrometheus{}
	prom := httptest.NewServer(fake)
	t.Cleanup(prom.Close)
	b := setupOpts(t, map[string]string{"MONITOR_PROMETHEUS_URL": prom.URL + "/prom/", "MONITOR_ROOT_PATH": "/monitor"},
		monitor.Options{PrometheusTimeout: 300 * time.Millisecond})

	code, body := b.get(t, "/monitor/api/metrics?duration=3600&queues=high,low")
	if code != http.StatusOK {
		t.Fatalf("GET /monitor/api/metrics = %d: %s", code, body)
	}
	var got map[string]struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	for _, f := range metricsFields {
		if got[f].Status != "success" {
			t.Errorf("field %s = %+v, want Prometheus's answer", f, got[f])
		}
	}
	fake.mu.Lock()
	queries := slices.Clone(fake.queries)
	fake.mu.Unlock()
	if len(queries) != len(metricsFields) || !slices.Contains(queries, `asynq_queue_size{queue=~"high|low"}`) {
		t.Errorf("queries sent to Prometheus: %q", queries)
	}

	// A queue name cannot inject PromQL.
	if code, _ := b.get(t, `/monitor/api/metrics?queues=`+`a"}%20or%20vector(1)%20or%20x{b="`); code != http.StatusOK {
		t.Errorf("odd queue name: %d", code)
	}
	fake.mu.Lock()
	last := fake.queries[len(fake.queries)-1]
	fake.mu.Unlock()
	if !strings.Contains(last, `queue=~"a\"\\}`) {
		t.Errorf("queue name not quoted: %s", last)
	}

	// Prometheus refusing a query: a clear 502, not Prometheus's body as data.
	fake.mu.Lock()
	fake.status = http.StatusBadRequest
	fake.mu.Unlock()
	code, body = b.get(t, "/monitor/api/metrics")
	if code != http.StatusBadGateway || !strings.Contains(string(body), "parse error") {
		t.Errorf("Prometheus error: got %d %s, want 502 naming the error", code, body)
	}

	// A hung Prometheus: the timeout answers 504 instead of hanging.
	fake.mu.Lock()
	fake.status, fake.release = 0, make(chan struct{})
	fake.mu.Unlock()
	t.Cleanup(func() { close(fake.release) })
	start := time.Now()
	code, body = b.get(t, "/monitor/api/metrics")
	if code != http.StatusGatewayTimeout {
		t.Errorf("hung Prometheus: got %d %s, want 504", code, body)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("hung Prometheus held the request %s despite a 300ms timeout", d)
	}
}

func TestPrometheusViewOff(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	code, body := b.get(t, "/api/metrics")
	if code != http.StatusNotFound || !strings.Contains(string(body), "MONITOR_PROMETHEUS_URL") {
		t.Errorf("GET /api/metrics without Prometheus = %d %s, want 404 naming MONITOR_PROMETHEUS_URL", code, body)
	}
}

// TestPrometheusViewAgainstRealPrometheus runs the Debian prometheus binary,
// scraping the monitor's /metrics every second, and reads the dashboard's
// metrics view back through the monitor.
func TestPrometheusViewAgainstRealPrometheus(t *testing.T) {
	t.Parallel()
	promPort := testsupport.FreePort(t)
	promURL := "http://127.0.0.1:" + strconv.Itoa(promPort)
	b := setup(t, map[string]string{"MONITOR_PROMETHEUS_URL": promURL})
	b.enqueue(t, "high", 2)
	startPrometheus(t, promPort, strings.TrimPrefix(b.url, "http://"))

	var last string
	testsupport.Eventually(t, 30*time.Second, "queue_size for high in the metrics view", func() bool {
		code, body := b.get(t, "/api/metrics?duration=300")
		last = fmt.Sprintf("%d %s", code, body)
		if code != http.StatusOK {
			return false
		}
		var resp map[string]struct {
			Status string `json:"status"`
			Data   struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
					Values [][2]any          `json:"values"`
				} `json:"result"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &resp); err != nil {
			t.Fatalf("decode %s: %v", body, err)
		}
		for _, f := range metricsFields {
			if resp[f].Status != "success" {
				t.Fatalf("field %s: %+v", f, resp[f])
			}
		}
		for _, r := range resp["queue_size"].Data.Result {
			if r.Metric["queue"] == "high" && len(r.Values) > 0 && r.Values[len(r.Values)-1][1] == "2" {
				return true
			}
		}
		return false
	})
	t.Logf("metrics view: %.300s", last)
}

func startPrometheus(t *testing.T, port int, target string) {
	t.Helper()
	bin := testsupport.LookPath(t, "prometheus")
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: monitor
    static_configs:
      - targets: [%q]
`, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // gone with the test binary
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logf.Close()
		if t.Failed() {
			out, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			t.Logf("prometheus log:\n%s", out)
		}
	})
	testsupport.Eventually(t, 20*time.Second, "prometheus ready", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/-/ready", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"taskstack/internal/testsupport"
)

// prometheus is a prometheus server (the Debian package) owned by one test.
type prometheus struct {
	URL  string
	proc *testsupport.Process
}

// startPrometheus runs prometheus with config on a free loopback port in a
// temporary directory, with exemplar storage as in compose, and waits until
// it is ready. It is stopped at cleanup.
func startPrometheus(t *testing.T, config []byte, port int) *prometheus {
	t.Helper()
	bin := testsupport.LookPath(t, "prometheus")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, config, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	proc := testsupport.StartProcess(t, bin, nil,
		"--config.file="+cfg,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--enable-feature=exemplar-storage",
		"--log.level=warn",
	)
	p := &prometheus{URL: "http://" + addr, proc: proc}
	testsupport.WaitHTTP(t, proc, p.URL+"/-/ready", 30*time.Second)
	return p
}

type promResult struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
}

type promResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

func (p *prometheus) call(t *testing.T, path string, params url.Values) (promResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Queries are POSTed (as Grafana's data source does, httpMethod: POST);
	// endpoints without parameters are GET-only.
	method := http.MethodPost
	if params == nil {
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, method, p.URL+path, strings.NewReader(params.Encode()))
	if err != nil {
		return promResponse{}, err
	}
	if params != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return promResponse{}, err
	}
	defer resp.Body.Close()
	var pr promResponse
	if err := json.NewDecoder(resp.Body).Decode(&pr); err != nil {
		return promResponse{}, fmt.Errorf("%s: HTTP %d: %w", path, resp.StatusCode, err)
	}
	return pr, nil
}

// query runs an instant query; a parse or evaluation error is returned.
func (p *prometheus) query(t *testing.T, expr string) ([]promResult, error) {
	t.Helper()
	pr, err := p.call(t, "/api/v1/query", url.Values{"query": {expr}})
	if err != nil {
		return nil, err
	}
	if pr.Status != "success" {
		return nil, fmt.Errorf("%s: %s", pr.ErrorType, pr.Error)
	}
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(pr.Data, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("result type %s, want vector", data.ResultType)
	}
	var res []promResult
	return res, json.Unmarshal(data.Result, &res)
}

// value returns the first sample of expr, or -1 when there is none.
func (p *prometheus) value(t *testing.T, expr string) float64 {
	t.Helper()
	res, err := p.query(t, expr)
	if err != nil {
		t.Fatalf("query %s: %v", expr, err)
	}
	if len(res) == 0 || len(res[0].Value) != 2 {
		return -1
	}
	s, _ := res[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return -1
	}
	return v
}

// localPrometheusConfig derives the test's configuration from the compose
// one: same jobs and rule files, each job's targets replaced by the local
// process (static, since there is no docker DNS here), scraped every second.
func localPrometheusConfig(t *testing.T, b bundle, targets map[string]string) []byte {
	t.Helper()
	path := filepath.Join(b.composeDir, "prometheus", "prometheus.yml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	global, _ := cfg["global"].(map[string]any)
	if global == nil {
		global = map[string]any{}
	}
	global["scrape_interval"], global["evaluation_interval"] = "1s", "1s"
	cfg["global"] = global

	rules, _ := cfg["rule_files"].([]any)
	if len(rules) == 0 {
		t.Fatalf("%s loads no rule file", path)
	}
	for i, r := range rules {
		rules[i] = filepath.Join(filepath.Dir(path), r.(string))
	}

	scrapes, _ := cfg["scrape_configs"].([]any)
	var jobs []string
	for _, s := range scrapes {
		sc := s.(map[string]any)
		job := sc["job_name"].(string)
		jobs = append(jobs, job)
		target, ok := targets[job]
		if !ok {
			t.Fatalf("compose scrapes job %q, which this test does not run: add it", job)
		}
		for k := range sc {
			if strings.HasSuffix(k, "_sd_configs") {
				delete(sc, k)
			}
		}
		sc["static_configs"] = []any{map[string]any{"targets": []any{target}}}
		sc["scrape_interval"] = "1s"
	}
	if diff := slices.Compare(slices.Sorted(slices.Values(jobs)), slices.Sorted(maps.Keys(targets))); diff != 0 {
		t.Fatalf("compose scrapes jobs %v, test runs %v", jobs, slices.Sorted(maps.Keys(targets)))
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// otlpSink accepts OTLP/HTTP trace exports, so that the binaries sample and
// record spans (and so exemplars) as they do in compose with Jaeger.
func otlpSink(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" {
			n.Add(1)
			w.Header().Set("Content-Type", "application/x-protobuf")
			w.WriteHeader(http.StatusOK)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// waitHealthcheck runs `<bin> healthcheck`, the compose and Dockerfile
// healthcheck, with the process's environment until it exits 0.
func waitHealthcheck(t *testing.T, proc *testsupport.Process, bin string, env map[string]string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		cmd := testsupport.Command(t, 10*time.Second, bin, "healthcheck")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		out, err := cmd.CombinedOutput()
		if err == nil {
			return
		}
		if proc.Exited() {
			t.Fatalf("%s exited:\n%s", proc.Name, proc.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s healthcheck still fails: %v\n%s", filepath.Base(bin), err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func postTask(t *testing.T, appURL, body string) int {
	t.Helper()
	resp, err := testsupport.HTTPClient().Post(appURL+"/api/v1/tasks", "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatalf("POST /api/v1/tasks: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	t.Logf("POST %s -> %d %s", body, resp.StatusCode, bytes.TrimSpace(b))
	return resp.StatusCode
}

// grafanaVar matches Grafana's template variables in a query.
var grafanaVar = regexp.MustCompile(`\$\{?(\w+)(?::\w+)?\}?`)

// promQL turns a dashboard query into what Grafana sends to Prometheus:
// built-in intervals resolved, dashboard variables set to "All" (.*).
func promQL(expr string) string {
	return grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		name := grafanaVar.FindStringSubmatch(m)[1]
		switch name {
		case "__rate_interval", "__range":
			return "1m"
		case "__interval":
			return "15s"
		}
		return ".*"
	})
}

var labelValues = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)

// TestPrometheusScrapesRealBinaries is the end-to-end check of the
// observability wiring: the real app, worker and monitor run against a real
// redis-server with the environment compose gives them in dev (addresses
// made local), a real Prometheus scrapes them with the compose scrape
// configuration, and after a few tasks every dashboard and rule expression
// is sent to it. Each must parse; each dashboard query must return data;
// exemplars must carry the trace_id the Grafana data source links to Jaeger.
func TestPrometheusScrapesRealBinaries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	project := b.mustLoad(t, "dev")

	composeEnv := map[string]map[string]string{}
	for _, bin := range ours {
		composeEnv[bin] = envOf(t, project.Services[bin])
	}
	redis := testsupport.StartRedis(t, testsupport.RedisPassword(composeEnv["app"]["REDIS_PASSWORD"]))
	otlp, exports := otlpSink(t)

	ports := map[string]int{}
	for _, job := range []string{"app", "app-admin", "worker", "monitor", "prometheus"} {
		ports[job] = testsupport.FreePort(t)
	}
	local := func(job string) string { return fmt.Sprintf("127.0.0.1:%d", ports[job]) }
	overrides := map[string]map[string]string{
		"app": {"APP_ADDR": local("app"), "APP_ADMIN_ADDR": local("app-admin")},
		// Canaries every second, so that their panels have data at once.
		"worker":  {"WORKER_ADMIN_ADDR": local("worker"), "CANARY_INTERVAL": "1s"},
		"monitor": {"MONITOR_ADDR": local("monitor"), "MONITOR_PROMETHEUS_URL": "http://" + local("prometheus")},
	}
	procs := map[string]*testsupport.Process{}
	for _, bin := range ours {
		env := maps.Clone(composeEnv[bin])
		if bin == "worker" {
			env = onHost(t, project.Services[bin], env, "SCHEDULE_FILE")
		}
		overrides[bin]["REDIS_URL"] = redis.URL
		overrides[bin]["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp.URL
		for k, v := range overrides[bin] {
			if _, ok := env[k]; !ok {
				t.Fatalf("compose does not give %s %s: the test overrides a variable that is not there", bin, k)
			}
			env[k] = v
		}
		path := testsupport.BuildBinary(t, bin)
		procs[bin] = testsupport.StartProcess(t, path, env)
		waitHealthcheck(t, procs[bin], path, env)
	}

	prom := startPrometheus(t, localPrometheusConfig(t, b, map[string]string{
		"prometheus": local("prometheus"),
		"app":        local("app-admin"), // the app's /metrics is on its admin port
		"worker":     local("worker"),
		"monitor":    local("monitor"),
	}), ports["prometheus"])

	testsupport.Eventually(t, 30*time.Second, "every target up", func() bool {
		return prom.value(t, `count(up == 1)`) == 4
	})

	appURL := "http://" + local("app")
	echo := func(queue string) string {
		return fmt.Sprintf(`{"type":"demo:echo","payload":{"arg":"x","sleep":"0s"},"queue":%q}`, queue)
	}
	for _, q := range []string{"high", "high", "high", "default", "low"} {
		if code := postTask(t, appURL, echo(q)); code != http.StatusAccepted {
			t.Fatalf("enqueue demo:echo on %s: HTTP %d, want 202", q, code)
		}
	}
	// A refused request, so the 4xx panels have something to show.
	if code := postTask(t, appURL, `{"type":"demo:nope","payload":{}}`); code < 400 || code >= 500 {
		t.Errorf("unknown task type: HTTP %d, want 4xx", code)
	}
	// Queue metrics exist once the queues do; only then archive a task, so
	// Prometheus sees the archived count go up.
	testsupport.Eventually(t, 30*time.Second, "queue metrics for all queues", func() bool {
		return prom.value(t, `count(asynq_queue_size)`) == 3
	})
	if code := postTask(t, appURL, `{"type":"demo:fail","payload":{"message":"boom"}}`); code != http.StatusAccepted {
		t.Fatalf("enqueue demo:fail: HTTP %d, want 202", code)
	}
	testsupport.Eventually(t, 60*time.Second, "tasks processed, canaries on every queue, and the failure archived", func() bool {
		return prom.value(t, `count(taskstack_canary_last_success_timestamp_seconds)`) == 3 &&
			prom.value(t, `count(increase(taskstack_canary_latency_seconds_count[1m]) > 0)`) == 3 &&
			prom.value(t, `sum(taskstack_tasks_processed_total)`) >= 6 &&
			prom.value(t, `sum(asynq_tasks_enqueued_total{state="archived"})`) >= 1 &&
			prom.value(t, `sum(asynq_tasks_processed_total)`) >= 6
	})
	// A few more scrapes, so that every rate has two samples after the change.
	time.Sleep(4 * time.Second)

	t.Run("dashboards", func(t *testing.T) {
		for f, d := range loadDashboards(t, b.root) {
			for _, pn := range d.panels() {
				for _, tg := range pn.Targets {
					expr := promQL(tg.Expr)
					res, err := prom.query(t, expr)
					switch {
					case err != nil:
						t.Errorf("%s %q: %s\n%v", f, pn.Title, expr, err)
					case len(res) == 0:
						t.Errorf("%s %q: no data for %s", f, pn.Title, expr)
					}
				}
			}
			for _, v := range d.Templating.List {
				var q struct {
					Query string `json:"query"`
				}
				if err := json.Unmarshal(v.Query, &q); err != nil {
					_ = json.Unmarshal(v.Query, &q.Query)
				}
				m := labelValues.FindStringSubmatch(q.Query)
				if m == nil {
					t.Errorf("%s: variable %s: query %q is not label_values(metric, label)", f, v.Name, q.Query)
					continue
				}
				expr := fmt.Sprintf("count by (%s) (%s)", m[2], m[1])
				if res, err := prom.query(t, expr); err != nil || len(res) == 0 {
					t.Errorf("%s: variable %s would offer nothing: %s: %v", f, v.Name, expr, err)
				}
			}
		}
	})

	t.Run("rules", func(t *testing.T) {
		rules := loadRules(t, filepath.Join(b.composeDir, rulesFile))
		results := map[string][]promResult{}
		for _, g := range rules.Groups {
			for _, r := range g.Rules {
				res, err := prom.query(t, r.Expr)
				if err != nil {
					t.Errorf("rule %s%s: %v\n%s", r.Alert, r.Record, err, r.Expr)
				}
				results[r.Alert] = res
			}
		}
		// With workers up and the exporter working, these must be quiet
		// (the SLOs too: every task started at once and succeeded, no 5xx;
		// a wrong le matcher would make every start late)...
		for _, a := range []string{"TaskstackNoWorkerUp", "TaskstackQueueMetricsAbsent", "TaskstackQueueStalled", "TaskstackQueuePaused", "TaskstackCanaryFailing", "TaskstackTasksOrphaned",
			"TaskstackQueueLatencyBudgetBurn", "TaskstackTaskSuccessBudgetBurn", "TaskstackAPIAvailabilityBudgetBurn"} {
			if len(results[a]) > 0 {
				t.Errorf("%s fires on a healthy stack: %v", a, results[a])
			}
		}
		// The SLIs read the real series: the bucket matcher finds le="1"
		// however this Prometheus stored it (it scrapes OpenMetrics, which
		// writes "1.0"; a miss records no ratio at all), and demo:fail's
		// failed attempt is left out of the success ratio (counted, it
		// would be above 0).
		for slo, most := range map[string]float64{"queue-latency": 0.5, "task-success": 0} {
			expr := fmt.Sprintf(`taskstack:slo_errors:ratio_rate5m{slo=%q}`, slo)
			if v := prom.value(t, expr); v < 0 || v > most {
				t.Errorf("%s = %v, want a recorded ratio of at most %v", expr, v, most)
			}
		}
		// ...and the archived demo:fail task must be seen, on its queue.
		if got := results["TaskstackArchivedTasksIncreasing"]; len(got) != 1 || got[0].Metric["queue"] != "low" {
			t.Errorf("TaskstackArchivedTasksIncreasing = %v, want one result for queue low", got)
		}
		// Prometheus loaded the same rules.
		pr, err := prom.call(t, "/api/v1/rules", nil)
		if err != nil || pr.Status != "success" || !strings.Contains(string(pr.Data), "TaskstackNoWorkerUp") {
			t.Errorf("rules not loaded by Prometheus: %v %s", err, pr.Error)
		}
	})

	t.Run("exemplars", func(t *testing.T) {
		if exports.Load() == 0 {
			t.Log("no OTLP export received yet")
		}
		now := time.Now()
		for _, metric := range []string{"taskstack_task_duration_seconds_bucket", "taskstack_task_queue_wait_seconds_bucket", "taskstack_http_request_duration_seconds_bucket"} {
			pr, err := prom.call(t, "/api/v1/query_exemplars", url.Values{
				"query": {metric},
				"start": {strconv.FormatInt(now.Add(-5*time.Minute).Unix(), 10)},
				"end":   {strconv.FormatInt(now.Add(time.Minute).Unix(), 10)},
			})
			if err != nil || pr.Status != "success" {
				t.Errorf("query_exemplars %s: %v %s", metric, err, pr.Error)
				continue
			}
			// The Grafana data source links the exemplar label trace_id.
			if !regexp.MustCompile(`"trace_id":"[0-9a-f]{32}"`).Match(pr.Data) {
				t.Errorf("%s: no exemplar with a trace_id: %s", metric, pr.Data)
			}
		}
	})

	// Last, as it stops the worker: the canary's gauge (exported by the
	// monitor from Redis) goes stale and its alert fires, with its runbook.
	t.Run("canary alert when the worker stops", func(t *testing.T) {
		before := prom.value(t, `min(taskstack_canary_last_success_timestamp_seconds)`)
		if age := float64(time.Now().Unix()) - before; before < 0 || age > 10 {
			t.Fatalf("canary last success %v (%.0fs ago) with the worker up; want within seconds", before, age)
		}
		if err := procs["worker"].Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if _, err := procs["worker"].Wait(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		testsupport.Eventually(t, 20*time.Second, "the canary gauge stale on every queue", func() bool {
			return prom.value(t, `count(time() - taskstack_canary_last_success_timestamp_seconds > 10)`) == 3
		})
		var firing []promAlert
		testsupport.Eventually(t, 3*time.Minute, "TaskstackCanaryFailing firing on every queue", func() bool {
			firing = prom.firing(t, "TaskstackCanaryFailing")
			return len(firing) == 3
		})
		if took := time.Since(stopped); took < 100*time.Second {
			t.Errorf("the alert fired %s after the worker stopped; want about 2 minutes", took.Round(time.Second))
		}
		for _, a := range firing {
			rb := a.Annotations["runbook_url"]
			if _, err := os.Stat(filepath.Join(b.root, rb)); rb == "" || err != nil {
				t.Errorf("alert on %s: runbook_url %q is not a file of the repository: %v", a.Labels["queue"], rb, err)
			}
		}
	})
}

type promAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
}

// firing returns the alerts named alert that Prometheus has firing.
func (p *prometheus) firing(t *testing.T, alert string) []promAlert {
	t.Helper()
	pr, err := p.call(t, "/api/v1/alerts", nil)
	if err != nil || pr.Status != "success" {
		t.Fatalf("GET /api/v1/alerts: %v %s", err, pr.Error)
	}
	var data struct {
		Alerts []promAlert `json:"alerts"`
	}
	if err := json.Unmarshal(pr.Data, &data); err != nil {
		t.Fatal(err)
	}
	var out []promAlert
	for _, a := range data.Alerts {
		if a.Labels["alertname"] == alert && a.State == "firing" {
			out = append(out, a)
		}
	}
	return out
}

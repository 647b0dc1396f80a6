package monitor_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"taskstack/internal/config"
	"taskstack/internal/monitor"
	"taskstack/internal/redisconn"
	"taskstack/internal/store"
	"taskstack/internal/tasks"
	"taskstack/internal/telemetry"
	"taskstack/internal/testsupport"
)

const (
	testUser     = "ops"
	testPassword = "correct-horse-battery-staple"
)

// bundle is what a monitor test needs: the served monitor, its Redis, and
// clients to put tasks there and look at them.
type bundle struct {
	url       string // server URL, no trailing slash
	root      string // MONITOR_ROOT_PATH as configured, trailing slash trimmed
	redis     *testsupport.Redis
	rdb       *redis.Client
	store     *store.Store
	inspector *asynq.Inspector
	registry  *prometheus.Registry
	logs      *testsupport.LogBuffer
}

// setup starts a real redis-server and a monitor on an httptest server;
// env adds to (or overrides) the default environment: dev, credentials set.
func setup(t *testing.T, env map[string]string) *bundle {
	t.Helper()
	return setupOpts(t, env, monitor.Options{})
}

// setupOpts is setup with monitor options (the Prometheus timeout).
func setupOpts(t *testing.T, env map[string]string, o monitor.Options) *bundle {
	t.Helper()
	r := testsupport.StartRedis(t)
	vars := map[string]string{
		"REDIS_URL":        r.URL,
		"MONITOR_USERNAME": testUser,
		"MONITOR_PASSWORD": testPassword,
	}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := config.LoadMonitor(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	return setupWith(t, r, cfg, o)
}

func setupWith(t *testing.T, r *testsupport.Redis, cfg config.Monitor, o monitor.Options) *bundle {
	t.Helper()
	o.Redis = redisconn.Options{URL: cfg.Redis.URL, Password: cfg.Redis.Password}
	o.RootPath, o.Username, o.Password = cfg.RootPath, cfg.Username, cfg.Password
	o.ReadOnly, o.PrometheusURL = cfg.ReadOnly, cfg.PrometheusURL
	logs := testsupport.NewLogBuffer(t)
	o.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	// What the binary uses: Go and process collectors included.
	reg := telemetry.NewRegistry(telemetry.Build{Version: "test"})
	o.Registry = reg
	mon, err := monitor.New(o)
	if err != nil {
		t.Fatal(err)
	}
	// The dashboard and, as the binary serves it beside, /metrics.
	mux := http.NewServeMux()
	mux.Handle("/", mon)
	mux.Handle("GET /metrics", telemetry.MetricsHandler(reg))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		if err := mon.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	rdb := r.Client(t)
	inspector := asynq.NewInspectorFromRedisClient(rdb)
	return &bundle{
		url: srv.URL, root: cfg.RootPath, redis: r, rdb: rdb,
		store:     store.New(store.Options{Redis: rdb, Retention: time.Hour, Queues: tasks.Queues()}),
		inspector: inspector, registry: reg, logs: logs,
	}
}

// enqueue puts n demo:echo tasks on queue and returns their IDs.
func (b *bundle) enqueue(t *testing.T, queue string, n int) []string {
	t.Helper()
	var ids []string
	cat := tasks.NewCatalogue()
	for range n {
		p, err := cat.Prepare(tasks.Request{Type: tasks.TypeEcho, Payload: []byte(`{"arg":"x","sleep":"0s"}`), Queue: queue})
		if err != nil {
			t.Fatal(err)
		}
		e, err := b.store.Enqueue(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	return ids
}

// do sends a request to path (relative to the server, not the root) with
// the test credentials unless user is "-", and returns status and body.
func (b *bundle) do(t *testing.T, method, path string, user, password string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, b.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "-" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// get GETs path with the right credentials.
func (b *bundle) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	return b.do(t, http.MethodGet, path, testUser, testPassword)
}

// queueSnapshot is the part of asynqmon's GET /api/queues answer the tests read.
type queueSnapshot struct {
	Queue     string `json:"queue"`
	Size      int    `json:"size"`
	Active    int    `json:"active"`
	Pending   int    `json:"pending"`
	Scheduled int    `json:"scheduled"`
	Retry     int    `json:"retry"`
	Archived  int    `json:"archived"`
	Completed int    `json:"completed"`
	Processed int    `json:"processed"`
	Failed    int    `json:"failed"`
	Paused    bool   `json:"paused"`
}

// queues GETs <root>/api/queues and indexes the answer by queue name.
func (b *bundle) queues(t *testing.T) (int, map[string]queueSnapshot, string) {
	t.Helper()
	code, body := b.get(t, b.root+"/api/queues")
	if code != http.StatusOK {
		return code, nil, string(body)
	}
	var resp struct {
		Queues []queueSnapshot `json:"queues"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	out := map[string]queueSnapshot{}
	for _, q := range resp.Queues {
		out[q.Queue] = q
	}
	return code, out, string(body)
}

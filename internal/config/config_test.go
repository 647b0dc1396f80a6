package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadWorkerDefaults(t *testing.T) {
	t.Parallel()
	c, err := LoadWorker(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int{"high": 6, "default": 3, "low": 1}, c.Queues); diff != "" {
		t.Errorf("queues (-want +got):\n%s", diff)
	}
	if c.ShutdownTimeout != 25*time.Second || c.AdminAddr != ":9090" || c.Concurrency != DefaultConcurrency || c.StrictPriority {
		t.Errorf("unexpected defaults: %+v", c)
	}
	if c.LogFormat != "text" || c.Env != EnvDev {
		t.Errorf("dev defaults: format %q env %q", c.LogFormat, c.Env)
	}
}

func TestMalformedValuesNameTheVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		load    func(func(string) string) error
		wantVar string
	}{
		{"bad env", map[string]string{"APP_ENV": "staging"}, loadAppErr, "APP_ENV"},
		{"bad level", map[string]string{"LOG_LEVEL": "loud"}, loadAppErr, "LOG_LEVEL"},
		{"bad format", map[string]string{"LOG_FORMAT": "xml"}, loadAppErr, "LOG_FORMAT"},
		{"bad redis scheme", map[string]string{"REDIS_URL": "http://x"}, loadAppErr, "REDIS_URL"},
		{"bad addr", map[string]string{"APP_ADDR": "8080"}, loadAppErr, "APP_ADDR"},
		{"bad retention", map[string]string{"TASK_RETENTION": "a day"}, loadAppErr, "TASK_RETENTION"},
		{"bad monitor url", map[string]string{"APP_MONITOR_URL": "monitor"}, loadAppErr, "APP_MONITOR_URL"},
		{"bad queues", map[string]string{"WORKER_QUEUES": "high:6,:1"}, loadWorkerErr, "WORKER_QUEUES"},
		{"duplicate queue", map[string]string{"WORKER_QUEUES": "high:6,high:1"}, loadWorkerErr, "WORKER_QUEUES"},
		{"bad root path", map[string]string{"MONITOR_ROOT_PATH": "/a{b}"}, loadMonitorErr, "MONITOR_ROOT_PATH"},
		{"relative root path", map[string]string{"MONITOR_ROOT_PATH": "monitor"}, loadMonitorErr, "MONITOR_ROOT_PATH"},
		// Found by FuzzRootPath: ServeMux panics on a pattern with a "." or ".." segment.
		{"dot segment root path", map[string]string{"MONITOR_ROOT_PATH": "/a/."}, loadMonitorErr, "MONITOR_ROOT_PATH"},
		{"dot-dot root path", map[string]string{"MONITOR_ROOT_PATH": "/.."}, loadMonitorErr, "MONITOR_ROOT_PATH"},
		{"bad monitor shutdown", map[string]string{"MONITOR_SHUTDOWN_TIMEOUT": "soon"}, loadMonitorErr, "MONITOR_SHUTDOWN_TIMEOUT"},
		{"bad otlp protocol", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, loadAppErr, "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{"bad otlp traces protocol", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "udp"}, loadAppErr, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
		{"bad weight", map[string]string{"WORKER_QUEUES": "high:x"}, loadWorkerErr, "WORKER_QUEUES"},
		{"bad strict", map[string]string{"WORKER_STRICT_PRIORITY": "yes please"}, loadWorkerErr, "WORKER_STRICT_PRIORITY"},
		{"bad concurrency", map[string]string{"WORKER_CONCURRENCY": "0"}, loadWorkerErr, "WORKER_CONCURRENCY"},
		{"bad shutdown", map[string]string{"WORKER_SHUTDOWN_TIMEOUT": "25"}, loadWorkerErr, "WORKER_SHUTDOWN_TIMEOUT"},
		{"bad check interval", map[string]string{"WORKER_TASK_CHECK_INTERVAL": "fast"}, loadWorkerErr, "WORKER_TASK_CHECK_INTERVAL"},
		{"prod without redis password", map[string]string{"APP_ENV": "prod", "REDIS_URL": "redis://redis:6379/0"}, loadWorkerErr, "REDIS_PASSWORD"},
		{"prod placeholder redis password", map[string]string{"APP_ENV": "prod", "REDIS_PASSWORD": "change-me"}, loadAppErr, "REDIS_PASSWORD"},
		{"prod monitor without auth", map[string]string{"APP_ENV": "prod", "REDIS_PASSWORD": "s3cr3t-Redis-pw-991"}, loadMonitorErr, "MONITOR_PASSWORD"},
		{"prod monitor placeholder", map[string]string{"APP_ENV": "prod", "REDIS_PASSWORD": "s3cr3t-Redis-pw-991", "MONITOR_USERNAME": "ops", "MONITOR_PASSWORD": "changeme-please"}, loadMonitorErr, "MONITOR_PASSWORD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.load(envOf(tt.env))
			if err == nil {
				t.Fatalf("want an error naming %s, got none", tt.wantVar)
			}
			if !strings.HasPrefix(err.Error(), tt.wantVar+":") && !strings.Contains(err.Error(), "\n"+tt.wantVar+":") {
				t.Errorf("error %q does not name %s", err, tt.wantVar)
			}
		})
	}
}

func loadAppErr(g func(string) string) error     { _, err := LoadApp(g); return err }
func loadWorkerErr(g func(string) string) error  { _, err := LoadWorker(g); return err }
func loadMonitorErr(g func(string) string) error { _, err := LoadMonitor(g); return err }

func TestProdAcceptsRealSecrets(t *testing.T) {
	t.Parallel()
	env := envOf(map[string]string{
		"APP_ENV": "prod", "REDIS_URL": "redis://redis:6379/0", "REDIS_PASSWORD": "Zq8-long-random-value",
		"MONITOR_USERNAME": "ops", "MONITOR_PASSWORD": "Vt5-another-long-value",
	})
	if _, err := LoadApp(env); err != nil {
		t.Errorf("app: %v", err)
	}
	m, err := LoadMonitor(env)
	if err != nil {
		t.Fatalf("monitor: %v", err)
	}
	if !m.ReadOnly || m.LogFormat != "json" {
		t.Errorf("prod monitor should default to read-only and JSON logs: %+v", m)
	}
}

func TestVarsComeFromTheLoaders(t *testing.T) {
	t.Parallel()
	names := func(vs []Var) map[string]bool {
		out := map[string]bool{}
		for _, v := range vs {
			out[v.Name] = true
		}
		return out
	}
	app, worker, monitor := names(Vars("app")), names(Vars("worker")), names(Vars("monitor"))
	for _, want := range []string{"APP_ADDR", "TASK_RETENTION", "REDIS_URL", "APP_ENV", "LOG_LEVEL", "LOG_FORMAT", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
		if !app[want] {
			t.Errorf("app vars lack %s", want)
		}
	}
	for _, want := range []string{"WORKER_QUEUES", "WORKER_STRICT_PRIORITY", "WORKER_CONCURRENCY", "WORKER_SHUTDOWN_TIMEOUT", "WORKER_TASK_CHECK_INTERVAL", "WORKER_ADMIN_ADDR"} {
		if !worker[want] {
			t.Errorf("worker vars lack %s", want)
		}
	}
	if app["WORKER_QUEUES"] || worker["APP_ADDR"] || !monitor["MONITOR_PASSWORD"] {
		t.Error("vars leak between binaries")
	}
	for _, v := range Vars("app") {
		if v.Name == "REDIS_PASSWORD" && !v.Secret {
			t.Error("REDIS_PASSWORD must be marked secret")
		}
	}
	if Vars("nope") != nil {
		t.Error("unknown binary should have no vars")
	}
}

func TestParseQueues(t *testing.T) {
	t.Parallel()
	got, err := ParseQueues(" high:10 , low ")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int{"high": 10, "low": 1}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []string{"", "high:0", "high:6,high:1", ":1", "high:1001", "high:x"} {
		if _, err := ParseQueues(bad); err == nil {
			t.Errorf("ParseQueues(%q) = nil error", bad)
		}
	}
}

func TestIsPlaceholder(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "changeme", "CHANGE_ME", "<your-password>", "password", "example-secret"} {
		if !IsPlaceholder(s) {
			t.Errorf("IsPlaceholder(%q) = false", s)
		}
	}
	if IsPlaceholder("q7Lr-9vXe-2mPa") {
		t.Error("a random secret is not a placeholder")
	}
}

// TestRedact: no password survives, also where url.Parse does not see user
// information (FuzzRedisURL: "//@://:pw@host" parsed the password into the
// path, which String printed back; without "://" nothing was cut at all).
func TestRedact(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"https://user:s3cret@grafana.example.com/d": "https://user:xxxxx@grafana.example.com/d",
		"https://grafana.example.com/d":             "https://grafana.example.com/d",
		"//@://:s3cret@host":                        "//@://xxxxx@host",
		"redis//user:s3cret@host":                   "xxxxx@host",
		"redis://user:s3cret@host:port/\x7f":        "redis://xxxxx@host:port/\x7f",
	} {
		if got := Redact(raw); got != want {
			t.Errorf("Redact(%q) = %q, want %q", raw, got, want)
		}
	}
}

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
	if c.AutoServers != (DefaultServers == "auto") || c.ServersMax != 4 {
		t.Errorf("servers: auto %v max %d", c.AutoServers, c.ServersMax)
	}
	if c, err := LoadWorker(envOf(map[string]string{"WORKER_SERVERS": " Auto "})); err != nil || !c.AutoServers || c.Servers != 0 {
		t.Errorf("WORKER_SERVERS=auto: %+v %v", c, err)
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
		{"canary under a second", map[string]string{"CANARY_INTERVAL": "500ms"}, loadWorkerErr, "CANARY_INTERVAL"},
		{"trace template without its placeholder", map[string]string{"APP_TRACE_URL_TEMPLATE": "http://jaeger:16686/trace/"}, loadAppErr, "APP_TRACE_URL_TEMPLATE"},
		{"trace template not a URL", map[string]string{"APP_TRACE_URL_TEMPLATE": "jaeger/{trace_id}"}, loadAppErr, "APP_TRACE_URL_TEMPLATE"},
		{"logs template without a placeholder", map[string]string{"APP_LOGS_URL_TEMPLATE": "https://g.example/explore"}, loadAppErr, "APP_LOGS_URL_TEMPLATE"},
		{"logs command without the task", map[string]string{"APP_LOGS_COMMAND_TEMPLATE": "docker compose logs"}, loadAppErr, "APP_LOGS_COMMAND_TEMPLATE"},
		{"canary past an hour", map[string]string{"CANARY_INTERVAL": "2h"}, loadWorkerErr, "CANARY_INTERVAL"},
		{"prod without redis password", map[string]string{"APP_ENV": "prod", "REDIS_URL": "redis://redis:6379/0"}, loadWorkerErr, "REDIS_PASSWORD"},
		{"prod placeholder redis password", map[string]string{"APP_ENV": "prod", "REDIS_PASSWORD": "change-me"}, loadAppErr, "REDIS_PASSWORD"},
		{"prod monitor without auth", map[string]string{"APP_ENV": "prod", "REDIS_PASSWORD": "s3cr3t-Redis-pw-991"}, loadMonitorErr, "MONITOR_PASSWORD"},
		{"prod monitor placeholder", map[string]string{"APP_ENV": "prod", "REDIS_PASSWORD": "s3cr3t-Redis-pw-991", "MONITOR_USERNAME": "ops", "MONITOR_PASSWORD": "changeme-please"}, loadMonitorErr, "MONITOR_PASSWORD"},
		{"prod app without auth", map[string]string{"APP_ENV": "prod", "REDIS_PASSWORD": "s3cr3t-Redis-pw-991"}, loadAppErr, "APP_TOKENS_FILE"},
		{"prod app without session key", map[string]string{"APP_ENV": "prod", "REDIS_PASSWORD": "s3cr3t-Redis-pw-991", "APP_TOKENS_FILE": "/t"}, loadAppErr, "APP_SESSION_KEY"},
		{"prod app weak session key", map[string]string{"APP_ENV": "prod", "REDIS_PASSWORD": "s3cr3t-Redis-pw-991", "APP_TOKENS_FILE": "/t", "APP_SESSION_KEY": "aaaaaaaaaaaaaaaaaaaa"}, loadAppErr, "APP_SESSION_KEY"},
		{"proxy without networks", map[string]string{"APP_AUTH_PROXY_HEADER": "X-Forwarded-User"}, loadAppErr, "APP_AUTH_PROXY_CIDRS"},
		{"proxy bad networks", map[string]string{"APP_AUTH_PROXY_HEADER": "X-Forwarded-User", "APP_AUTH_PROXY_CIDRS": "10.0.0.0/33"}, loadAppErr, "APP_AUTH_PROXY_CIDRS"},
		{"bad rate", map[string]string{"APP_RATE_LIMIT": "fast"}, loadAppErr, "APP_RATE_LIMIT"},
		{"negative rate", map[string]string{"APP_RATE_LIMIT": "-1"}, loadAppErr, "APP_RATE_LIMIT"},
		{"bad memory ratio", map[string]string{"REDIS_MAX_MEMORY_USE": "1.5"}, loadAppErr, "REDIS_MAX_MEMORY_USE"},
		{"bad admin addr", map[string]string{"APP_ADMIN_ADDR": "9091"}, loadAppErr, "APP_ADMIN_ADDR"},
		{"bad result cap", map[string]string{"TASK_MAX_RESULT_BYTES": "0"}, loadWorkerErr, "TASK_MAX_RESULT_BYTES"},
		{"servers neither auto nor a number", map[string]string{"WORKER_SERVERS": "many"}, loadWorkerErr, "WORKER_SERVERS"},
		{"no servers", map[string]string{"WORKER_SERVERS": "0"}, loadWorkerErr, "WORKER_SERVERS"},
		{"too many servers", map[string]string{"WORKER_SERVERS": "65"}, loadWorkerErr, "WORKER_SERVERS"},
		{"bad servers max", map[string]string{"WORKER_SERVERS_MAX": "0"}, loadWorkerErr, "WORKER_SERVERS_MAX"},
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
		"APP_TOKENS_FILE": "/run/secrets/tokens", "APP_SESSION_KEY": "b7c1e0f29a4d8356e1f0",
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

func TestWeakSecrets(t *testing.T) {
	t.Parallel()
	for _, weak := range []string{
		"a", "short-secret", "aaaaaaaaaaaaaaaa", "passwordpassword", "abcabcabcabcabcabc",
		"Password123456!!", "p@ssw0rd12345678", "changeme-changeme-1", "1212121212121212", "aabbaabbaabbaabb",
		"qwertyuiop123456", "<your-password-here>",
	} {
		if WeakSecret(weak) == "" {
			t.Errorf("WeakSecret(%q) = \"\", want a reason", weak)
		}
		if why := WeakSecret(weak); len(weak) > 4 && strings.Contains(why, weak) {
			t.Errorf("the reason %q repeats the secret", why)
		}
	}
	for _, strong := range []string{"Zq8-long-random-value", "b7c1e0f29a4d8356e1f0", "correct horse battery staple 7"} {
		if why := WeakSecret(strong); why != "" {
			t.Errorf("WeakSecret(%q) = %q, want accepted", strong, why)
		}
	}
}

// TestEveryVariableTakesEffect sets each variable to a value other than
// its default and checks the field it must change: a loader that reads a
// variable and then ignores it fails here.
func TestEveryVariableTakesEffect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, value string
		check       func(App, Worker, Monitor) bool
	}{
		{"APP_ENV", "prod", func(a App, _ Worker, _ Monitor) bool {
			return a.Prod() && a.LogFormat == "json" && a.SecureCookie && a.RateLimit == 100
		}},
		{"LOG_LEVEL", "warn", func(a App, _ Worker, _ Monitor) bool { return a.LogLevel.String() == "WARN" }},
		{"LOG_FORMAT", "json", func(a App, _ Worker, _ Monitor) bool { return a.LogFormat == "json" }},
		{"REDIS_URL", "rediss://r:6380/2", func(a App, _ Worker, _ Monitor) bool { return a.Redis.URL == "rediss://r:6380/2" }},
		{"REDIS_PASSWORD", "pw-from-secret", func(a App, _ Worker, _ Monitor) bool { return a.Redis.Password == "pw-from-secret" }},
		{"REDIS_CLUSTER_ADDRS", "n1:6379, n2:6379", func(a App, _ Worker, _ Monitor) bool {
			return cmp.Equal(a.Redis.ClusterAddrs, []string{"n1:6379", "n2:6379"})
		}},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4318", func(a App, _ Worker, _ Monitor) bool { return a.OTLPEndpoint == "http://otel:4318" }},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://otel:4318/v1/traces", func(a App, _ Worker, _ Monitor) bool { return a.OTLPEndpoint == "http://otel:4318/v1/traces" }},
		{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", func(a App, _ Worker, _ Monitor) bool { return a.OTLPProtocol == "grpc" }},
		{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc", func(a App, _ Worker, _ Monitor) bool { return a.OTLPProtocol == "grpc" }},
		{"APP_ADDR", ":18080", func(a App, _ Worker, _ Monitor) bool { return a.Addr == ":18080" }},
		{"APP_ADMIN_ADDR", "127.0.0.1:19091", func(a App, _ Worker, _ Monitor) bool { return a.AdminAddr == "127.0.0.1:19091" }},
		{"TASK_RETENTION", "72h", func(a App, w Worker, _ Monitor) bool {
			return a.Retention == 72*time.Hour && w.Retention == 72*time.Hour
		}},
		{"WEBHOOK_ALLOWED_HOSTS", "hooks.example.com, *.ci.example", func(a App, w Worker, _ Monitor) bool {
			want := []string{"hooks.example.com", "*.ci.example"}
			return cmp.Equal(a.WebhookAllowedHosts, want) && cmp.Equal(w.WebhookAllowedHosts, want)
		}},
		{"SCHEDULE_FILE", "/etc/taskstack/schedule.yml", func(_ App, w Worker, _ Monitor) bool { return w.ScheduleFile == "/etc/taskstack/schedule.yml" }},
		{"APP_MONITOR_URL", "https://m.example/", func(a App, _ Worker, _ Monitor) bool { return a.MonitorURL == "https://m.example/" }},
		{"APP_GRAFANA_URL", "https://g.example/", func(a App, _ Worker, _ Monitor) bool { return a.GrafanaURL == "https://g.example/" }},
		{"APP_TRACE_URL_TEMPLATE", "http://jaeger:16686/trace/{trace_id}", func(a App, _ Worker, _ Monitor) bool {
			return a.TraceURLTemplate == "http://jaeger:16686/trace/{trace_id}"
		}},
		{"APP_LOGS_URL_TEMPLATE", "https://g.example/explore?q={task_id}", func(a App, _ Worker, _ Monitor) bool {
			return a.LogsURLTemplate == "https://g.example/explore?q={task_id}"
		}},
		{"APP_LOGS_COMMAND_TEMPLATE", "kubectl logs deploy/worker | grep {task_id}", func(a App, _ Worker, _ Monitor) bool {
			return a.LogsCommandTemplate == "kubectl logs deploy/worker | grep {task_id}"
		}},
		{"APP_SHUTDOWN_TIMEOUT", "3s", func(a App, _ Worker, _ Monitor) bool { return a.ShutdownTimeout == 3*time.Second }},
		{"APP_TOKENS_FILE", "/run/tokens", func(a App, _ Worker, _ Monitor) bool { return a.TokensFile == "/run/tokens" }},
		{"APP_SESSION_KEY", "k", func(a App, _ Worker, _ Monitor) bool { return a.SessionKey == "k" }},
		{"APP_SESSION_TTL", "1h", func(a App, _ Worker, _ Monitor) bool { return a.SessionTTL == time.Hour }},
		{"APP_AUTH_PROXY_SCOPES", "tasks:read", func(a App, _ Worker, _ Monitor) bool { return a.ProxyScopes == "tasks:read" }},
		{"APP_SECURE_COOKIE", "true", func(a App, _ Worker, _ Monitor) bool { return a.SecureCookie }},
		{"APP_RATE_LIMIT", "5.5", func(a App, _ Worker, _ Monitor) bool { return a.RateLimit == 5.5 }},
		{"APP_RATE_BURST", "7", func(a App, _ Worker, _ Monitor) bool { return a.RateBurst == 7 }},
		{"QUEUE_MAX_PENDING", "10", func(a App, _ Worker, _ Monitor) bool { return a.MaxPending == 10 }},
		{"TASK_MAX_PAYLOAD_BYTES", "100", func(a App, _ Worker, _ Monitor) bool { return a.MaxPayloadBytes == 100 }},
		{"REDIS_MAX_MEMORY_USE", "0.5", func(a App, _ Worker, _ Monitor) bool { return a.MaxMemory == 0.5 }},
		{"APP_MAX_CONCURRENT_LISTS", "2", func(a App, _ Worker, _ Monitor) bool { return a.MaxLists == 2 }},
		{"WORKER_ADMIN_ADDR", ":19090", func(_ App, w Worker, _ Monitor) bool { return w.AdminAddr == ":19090" }},
		{"WORKER_QUEUES", "high:2,low", func(_ App, w Worker, _ Monitor) bool { return cmp.Equal(w.Queues, map[string]int{"high": 2, "low": 1}) }},
		{"WORKER_STRICT_PRIORITY", "true", func(_ App, w Worker, _ Monitor) bool { return w.StrictPriority }},
		{"WORKER_CONCURRENCY", "3", func(_ App, w Worker, _ Monitor) bool { return w.Concurrency == 3 }},
		{"WORKER_SERVERS", "2", func(_ App, w Worker, _ Monitor) bool { return w.Servers == 2 && !w.AutoServers }},
		{"WORKER_SERVERS_MAX", "7", func(_ App, w Worker, _ Monitor) bool { return w.ServersMax == 7 }},
		{"WORKER_SHUTDOWN_TIMEOUT", "9s", func(_ App, w Worker, _ Monitor) bool { return w.ShutdownTimeout == 9*time.Second }},
		{"WORKER_TASK_CHECK_INTERVAL", "50ms", func(_ App, w Worker, _ Monitor) bool { return w.TaskCheckInterval == 50*time.Millisecond }},
		{"CANARY_INTERVAL", "0", func(_ App, w Worker, _ Monitor) bool { return w.CanaryInterval == 0 }},
		{"WORKER_RECOVERY_INTERVAL", "7s", func(_ App, w Worker, _ Monitor) bool { return w.RecoveryInterval == 7*time.Second }},
		{"WORKER_LEASE_EXPIRY_MARGIN", "9s", func(_ App, w Worker, _ Monitor) bool { return w.LeaseExpiryMargin == 9*time.Second }},
		{"TASK_MAX_RESULT_BYTES", "123", func(_ App, w Worker, _ Monitor) bool { return w.MaxResultBytes == 123 }},
		{"MONITOR_ADDR", ":18081", func(_ App, _ Worker, m Monitor) bool { return m.Addr == ":18081" }},
		{"MONITOR_ROOT_PATH", "/ops/queues/", func(_ App, _ Worker, m Monitor) bool { return m.RootPath == "/ops/queues" }},
		{"MONITOR_READ_ONLY", "true", func(_ App, _ Worker, m Monitor) bool { return m.ReadOnly }},
		{"MONITOR_PROMETHEUS_URL", "http://prom:9090", func(_ App, _ Worker, m Monitor) bool { return m.PrometheusURL == "http://prom:9090" }},
		{"MONITOR_SHUTDOWN_TIMEOUT", "20s", func(_ App, _ Worker, m Monitor) bool { return m.ShutdownTimeout == 20*time.Second }},
	}
	// Variables tested elsewhere or read by a library only.
	elsewhere := map[string]string{
		"MONITOR_USERNAME": "set together with MONITOR_PASSWORD below", "MONITOR_PASSWORD": "below",
		"APP_AUTH_PROXY_HEADER": "needs APP_AUTH_PROXY_CIDRS: below", "APP_AUTH_PROXY_CIDRS": "below",
	}
	tested := map[string]bool{}
	for _, tt := range tests {
		tested[tt.name] = true
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{tt.name: tt.value}
			if tt.name == "APP_ENV" {
				vars["REDIS_PASSWORD"], vars["APP_TOKENS_FILE"], vars["APP_SESSION_KEY"] = "Zq8-long-random-value", "/t", "b7c1e0f29a4d8356e1f0"
				vars["MONITOR_USERNAME"], vars["MONITOR_PASSWORD"] = "ops", "Vt5-another-long-value"
			}
			a, aerr := LoadApp(envOf(vars))
			w, werr := LoadWorker(envOf(vars))
			m, merr := LoadMonitor(envOf(vars))
			if aerr != nil || werr != nil || merr != nil {
				t.Fatalf("%s=%s: %v %v %v", tt.name, tt.value, aerr, werr, merr)
			}
			if !tt.check(a, w, m) {
				t.Errorf("%s=%s had no effect", tt.name, tt.value)
			}
		})
	}
	m, err := LoadMonitor(envOf(map[string]string{"MONITOR_USERNAME": "ops", "MONITOR_PASSWORD": "pw"}))
	if err != nil || m.Username != "ops" || m.Password != "pw" {
		t.Errorf("monitor credentials: %+v %v", m, err)
	}
	a, err := LoadApp(envOf(map[string]string{"APP_AUTH_PROXY_HEADER": "X-User", "APP_AUTH_PROXY_CIDRS": "10.0.0.0/8"}))
	if err != nil || a.ProxyHeader != "X-User" || a.ProxyCIDRs != "10.0.0.0/8" {
		t.Errorf("proxy auth: %+v %v", a, err)
	}
	for _, bin := range []string{"app", "worker", "monitor"} {
		for _, v := range Vars(bin) {
			if !tested[v.Name] && !v.Passthrough && elsewhere[v.Name] == "" {
				t.Errorf("%s (read by %s) has no case in TestEveryVariableTakesEffect", v.Name, bin)
			}
		}
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

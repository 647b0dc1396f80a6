package compose

import (
	"maps"
	"slices"
	"testing"

	"taskstack/internal/config"
)

// defaultIsFine lists the variables a binary reads that compose leaves to
// their default, with the reason. Every other variable config.Vars reports
// must be given explicitly, so a new setting forces a decision here.
var defaultIsFine = map[string]map[string]string{
	"app": merge(commonDefaults, map[string]string{
		"APP_SESSION_TTL":          "12h sessions suit a work day",
		"APP_AUTH_PROXY_HEADER":    "compose ships token auth; a proxy setup sets it (docs/security.md)",
		"APP_AUTH_PROXY_CIDRS":     "only with APP_AUTH_PROXY_HEADER",
		"APP_AUTH_PROXY_SCOPES":    "only with APP_AUTH_PROXY_HEADER",
		"APP_SECURE_COOKIE":        "the default follows APP_ENV: Secure in prod (TLS in front), not in dev (plain http://localhost)",
		"APP_RATE_LIMIT":           "the default follows APP_ENV: 100/s per credential in prod, off in dev",
		"APP_RATE_BURST":           "the binary's 200 absorbs a client's bursts",
		"QUEUE_MAX_PENDING":        "the binary's 100,000 per queue bounds one client's backlog",
		"TASK_MAX_PAYLOAD_BYTES":   "the binary's 64 KiB fits every task type shipped",
		"REDIS_MAX_MEMORY_USE":     "the binary's 90% of REDIS_MAXMEMORY leaves room for results and retries",
		"APP_MAX_CONCURRENT_LISTS": "the binary's 8 fits the app's 1 CPU limit",
	}),
	"monitor": merge(commonDefaults, map[string]string{
		"MONITOR_ROOT_PATH":        "served at / on its own port",
		"MONITOR_SHUTDOWN_TIMEOUT": "the binary's 15s fits compose's stop_grace_period of 15s",
	}),
	"worker": merge(commonDefaults, map[string]string{
		"WORKER_STRICT_PRIORITY":     "weighted queues (WORKER_QUEUES) are the intended policy",
		"WORKER_SERVERS":             "the binary's one dequeue loop per replica; replicas scale with WORKER_REPLICAS",
		"WORKER_SERVERS_MAX":         "only read with WORKER_SERVERS=auto, which compose does not set",
		"WORKER_TASK_CHECK_INTERVAL": "the binary's default balances latency and idle Redis load",
		"TASK_MAX_RESULT_BYTES":      "the binary's 1 MiB is far above what the shipped task types write",
		"WORKER_RECOVERY_INTERVAL":   "the binary's default brings a crashed worker's tasks back within ~40s (docs/reliability.md)",
		"WORKER_LEASE_EXPIRY_MARGIN": "compose runs every worker on one host: no clock skew between them",
	}),
}

var commonDefaults = map[string]string{
	"REDIS_CLUSTER_ADDRS":                "compose runs a single Redis node",
	"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "OTEL_EXPORTER_OTLP_ENDPOINT covers traces",
	"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "OTEL_EXPORTER_OTLP_PROTOCOL covers traces",
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

// TestEnvironmentMatchesConfig compares what compose gives each binary with
// what the binary reads (internal/config.Vars, derived from the code that
// reads them): nothing unknown, nothing missing but documented defaults,
// every secret supplied from the operator's secrets in prod. Then the
// binary's own loader must accept the result, as it will at start.
func TestEnvironmentMatchesConfig(t *testing.T) {
	t.Parallel()
	b := setup(t)
	loaders := map[string]func(func(string) string) error{
		"app":     func(g func(string) string) error { _, err := config.LoadApp(g); return err },
		"worker":  func(g func(string) string) error { _, err := config.LoadWorker(g); return err },
		"monitor": func(g func(string) string) error { _, err := config.LoadMonitor(g); return err },
	}
	for _, env := range envs {
		p := b.mustLoad(t, env)
		for _, bin := range ours {
			t.Run(env+"/"+bin, func(t *testing.T) {
				given := envOf(t, p.Services[bin])
				vars := config.Vars(bin)
				if len(vars) == 0 {
					t.Fatalf("config.Vars(%q) is empty", bin)
				}
				known := map[string]config.Var{}
				for _, v := range vars {
					known[v.Name] = v
				}
				for _, name := range slices.Sorted(maps.Keys(given)) {
					if _, ok := known[name]; !ok {
						t.Errorf("compose gives %s %s, which it does not read", bin, name)
					}
				}
				for name, why := range defaultIsFine[bin] {
					if _, ok := known[name]; !ok {
						t.Errorf("defaultIsFine[%s] lists %s (%s), which %s no longer reads", bin, name, why, bin)
					}
					if _, ok := given[name]; ok {
						t.Errorf("compose gives %s %s although defaultIsFine says %q", bin, name, why)
					}
				}
				for _, v := range vars {
					_, isGiven := given[v.Name]
					_, defaultOK := defaultIsFine[bin][v.Name]
					if !isGiven && !defaultOK {
						t.Errorf("compose does not give %s %s (default %q: %s); set it or add it to defaultIsFine with a reason", bin, v.Name, v.Default, v.Help)
					}
					if v.Secret && env == "prod" {
						if !slices.Contains(slices.Collect(maps.Values(prodSecrets)), given[v.Name]) {
							t.Errorf("prod %s: secret %s is not supplied from the operator's secrets", bin, v.Name)
						}
					}
				}
				getenv := func(k string) string { return given[k] }
				if err := loaders[bin](getenv); err != nil {
					t.Errorf("%s refuses what compose gives it in %s:\n%v", bin, env, err)
				}
			})
		}
	}
}

// TestProdRefusesPlaceholderSecrets: compose accepts any value, the
// binaries then refuse the obvious stand-ins.
func TestProdRefusesPlaceholderSecrets(t *testing.T) {
	t.Parallel()
	b := setup(t)
	placeholders := map[string]string{
		"REDIS_PASSWORD":         "changeme",
		"MONITOR_PASSWORD":       "change-me-please",
		"GRAFANA_ADMIN_PASSWORD": "admin",
		"APP_SESSION_KEY":        "secretsecretsecret",
	}
	p, err := b.load(t, "prod", placeholders)
	if err != nil {
		t.Fatal(err)
	}
	for bin, load := range map[string]func(func(string) string) error{
		"app":     func(g func(string) string) error { _, err := config.LoadApp(g); return err },
		"worker":  func(g func(string) string) error { _, err := config.LoadWorker(g); return err },
		"monitor": func(g func(string) string) error { _, err := config.LoadMonitor(g); return err },
	} {
		given := envOf(t, p.Services[bin])
		if err := load(func(k string) string { return given[k] }); err == nil {
			t.Errorf("prod %s starts with placeholder secrets", bin)
		}
	}
}

package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// validRootPath is what MONITOR_ROOT_PATH may be, without its trailing slash.
var validRootPath = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)*$`)

// Environment names.
const (
	EnvDev  = "dev"
	EnvProd = "prod"
)

// Common is what every binary reads: environment, logging, Redis, tracing.
type Common struct {
	Env       string
	LogLevel  slog.Level
	LogFormat string
	Redis     Redis
	// OTLPEndpoint is set when traces should be exported; the SDK reads the
	// other OTEL_* variables itself.
	OTLPEndpoint string
	// OTLPProtocol is "http/protobuf" or "grpc".
	OTLPProtocol string
}

// Redis names the Redis deployment.
type Redis struct {
	// URL is redis://, rediss:// (TLS), redis-socket:// or
	// redis-sentinel://; empty means "embedded" in devstack only.
	URL string
	// Password overrides any password in URL, so the URL can live in a
	// ConfigMap and the password in a Secret.
	Password string
	// ClusterAddrs, when set, selects Redis Cluster (comma-separated seeds).
	ClusterAddrs []string
}

// Prod reports whether the binary runs with production safeguards.
func (c Common) Prod() bool { return c.Env == EnvProd }

// Base returns the common part of a binary's configuration.
func (c Common) Base() Common { return c }

func loadCommon(e *env, defaultRedisURL string) Common {
	var c Common
	c.Env = e.Enum("APP_ENV", EnvDev, "dev or prod; prod refuses placeholder secrets and defaults to JSON logs", EnvDev, EnvProd)
	level := e.Enum("LOG_LEVEL", "info", "debug, info, warn or error", "debug", "info", "warn", "error")
	_ = c.LogLevel.UnmarshalText([]byte(level))
	defFormat := "text"
	if c.Env == EnvProd {
		defFormat = "json"
	}
	c.LogFormat = e.Enum("LOG_FORMAT", defFormat, "text or json (json by default in prod)", "text", "json")

	c.Redis.URL = e.String("REDIS_URL", defaultRedisURL, "Redis to use: redis://[user:pass@]host:port/db, rediss:// for TLS, redis-sentinel://[:pass@]host:port,host:port?master=name")
	c.Redis.Password = e.Secret("REDIS_PASSWORD", "Redis password; overrides the one in REDIS_URL")
	if seeds := e.String("REDIS_CLUSTER_ADDRS", "", "comma-separated host:port seeds of a Redis Cluster; replaces REDIS_URL's host"); seeds != "" {
		for s := range strings.SplitSeq(seeds, ",") {
			if s = strings.TrimSpace(s); s != "" {
				c.Redis.ClusterAddrs = append(c.Redis.ClusterAddrs, s)
			}
		}
	}
	if c.Redis.URL != "" {
		if err := checkRedisURL(c.Redis.URL); err != nil {
			e.fail("REDIS_URL", "%v", err)
		}
	}
	if c.Env == EnvProd && c.Redis.URL != "" {
		pw := c.Redis.Password
		if pw == "" {
			pw = urlPassword(c.Redis.URL)
		}
		if pw == "" {
			e.fail("REDIS_PASSWORD", "required when APP_ENV=prod (or put the password in REDIS_URL)")
		} else if why := WeakSecret(pw); why != "" {
			e.fail("REDIS_PASSWORD", "%s", why)
		}
	}

	c.OTLPEndpoint = e.Passthrough("OTEL_EXPORTER_OTLP_ENDPOINT", "", "OTLP endpoint for traces; tracing is off when empty")
	if tr := e.Passthrough("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", "OTLP endpoint for traces only (overrides the above)"); tr != "" && c.OTLPEndpoint == "" {
		c.OTLPEndpoint = tr
	}
	c.OTLPProtocol = e.Enum("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "http/protobuf or grpc", "http/protobuf", "grpc")
	if p := e.String("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "", "http/protobuf or grpc for traces only (overrides the above)"); p != "" {
		if p != "http/protobuf" && p != "grpc" {
			e.fail("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "%q is not one of http/protobuf, grpc", p)
		} else {
			c.OTLPProtocol = p
		}
	}
	e.Passthrough("OTEL_SERVICE_NAME", "", "service name on traces (defaults to the binary name)")
	e.Passthrough("OTEL_TRACES_SAMPLER", "parentbased_always_on", "OpenTelemetry sampler, e.g. parentbased_traceidratio")
	e.Passthrough("OTEL_TRACES_SAMPLER_ARG", "", "sampler argument, e.g. 0.1")
	e.Passthrough("OTEL_RESOURCE_ATTRIBUTES", "", "extra resource attributes, k=v,k=v")
	e.Passthrough("GOMEMLIMIT", "", "Go runtime soft memory limit; set below the container limit")
	return c
}

func checkRedisURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL, password included: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("not a valid URL: %v", err)
	}
	switch u.Scheme {
	case "redis", "rediss", "redis-socket", "redis-sentinel":
	default:
		return fmt.Errorf("scheme %q is not one of redis, rediss, redis-socket, redis-sentinel", u.Scheme)
	}
	if u.Scheme != "redis-socket" && u.Host == "" {
		return errors.New("missing host")
	}
	return nil
}

func urlPassword(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return ""
	}
	pw, _ := u.User.Password()
	return pw
}

// IsPlaceholder reports whether a secret is an obvious stand-in that must
// never reach production.
func IsPlaceholder(secret string) bool {
	s := strings.ToLower(strings.TrimSpace(secret))
	if s == "" {
		return true
	}
	for _, p := range []string{"change", "placeholder", "example", "replace", "todo", "xxx", "<", "${"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return slices.Contains([]string{"password", "secret", "admin", "redis", "taskstack", "test", "dev", "123456"}, s)
}

// App configures cmd/app.
type App struct {
	Common
	Addr            string
	AdminAddr       string
	Retention       time.Duration
	MonitorURL      string
	GrafanaURL      string
	ShutdownTimeout time.Duration

	// Where a task page sends people for more: its trace, its log lines
	// (a link, or else a command line to run).
	TraceURLTemplate    string
	LogsURLTemplate     string
	LogsCommandTemplate string

	// Authentication: a tokens file, and/or a trusted proxy's user header.
	TokensFile   string
	SessionKey   string
	SessionTTL   time.Duration
	ProxyHeader  string
	ProxyCIDRs   string
	ProxyScopes  string
	SecureCookie bool

	// Limits.
	RateLimit       float64
	RateBurst       int
	MaxPending      int
	MaxPayloadBytes int
	MaxMemory       float64
	MaxLists        int

	// WebhookAllowedHosts is where demo:webhook may deliver.
	WebhookAllowedHosts []string
}

// LoadApp reads the app's configuration.
func LoadApp(getenv func(string) string) (App, error) {
	e := newEnv(getenv)
	c := loadApp(e)
	return c, e.err()
}

func loadApp(e *env) App {
	c := App{
		Common:              loadCommon(e, "redis://localhost:6379/0"),
		Addr:                e.Addr("APP_ADDR", ":8080", "listen address of the web page and API (and /healthz, /readyz)"),
		AdminAddr:           e.Addr("APP_ADMIN_ADDR", ":9091", "listen address of /metrics, /healthz and /readyz; never publish it"),
		Retention:           retention(e),
		MonitorURL:          e.URL("APP_MONITOR_URL", "link to the monitor (asynqmon) shown on the page"),
		GrafanaURL:          e.URL("APP_GRAFANA_URL", "link to Grafana shown on the page"),
		ShutdownTimeout:     e.Duration("APP_SHUTDOWN_TIMEOUT", 10*time.Second, time.Second, 5*time.Minute, "how long in-flight HTTP requests may take to finish on SIGTERM"),
		WebhookAllowedHosts: webhookHosts(e),
		TraceURLTemplate:    e.URLTemplate("APP_TRACE_URL_TEMPLATE", "link from a task page to its trace, {trace_id} filled in (e.g. http://localhost:16686/trace/{trace_id} for Jaeger); no link when empty", "{trace_id}"),
		LogsURLTemplate:     e.URLTemplate("APP_LOGS_URL_TEMPLATE", "link from a task page to its log lines (e.g. Grafana Explore on Loki), {task_id}, {queue} and {trace_id} filled in; when empty the page shows APP_LOGS_COMMAND_TEMPLATE", "{task_id}", "{trace_id}"),
		LogsCommandTemplate: e.String("APP_LOGS_COMMAND_TEMPLATE", "docker compose logs app worker | grep -F {task_id}", "command line a task page shows to find the task's log lines, {task_id} filled in (when APP_LOGS_URL_TEMPLATE is empty)"),
	}
	if t := c.LogsCommandTemplate; t != "" && !strings.Contains(t, "{task_id}") {
		e.fail("APP_LOGS_COMMAND_TEMPLATE", "%q does not hold {task_id}", t)
	}
	prod := c.Prod()
	c.TokensFile = e.String("APP_TOKENS_FILE", "", "file of API tokens, one name:scopes:sha256 a line (app token new makes them); reloaded when it changes; required in prod unless APP_AUTH_PROXY_HEADER is set")
	c.SessionKey = e.Secret("APP_SESSION_KEY", "key that signs login session cookies (16+ random characters; required in prod with APP_TOKENS_FILE)")
	c.SessionTTL = e.Duration("APP_SESSION_TTL", 12*time.Hour, time.Minute, 30*24*time.Hour, "how long a login session lasts")
	c.ProxyHeader = e.String("APP_AUTH_PROXY_HEADER", "", "header carrying the user name set by a trusted authenticating proxy (e.g. X-Forwarded-User)")
	c.ProxyCIDRs = e.String("APP_AUTH_PROXY_CIDRS", "", "networks the authenticating proxy connects from; the header is ignored from anywhere else")
	c.ProxyScopes = e.String("APP_AUTH_PROXY_SCOPES", "tasks:read,tasks:write", "scopes of users the proxy vouches for")
	c.SecureCookie = e.Bool("APP_SECURE_COOKIE", prod, "mark the session cookie Secure (HTTPS only; default true in prod)")
	defRate := 0.0
	if prod {
		defRate = 100
	}
	c.RateLimit = e.Float("APP_RATE_LIMIT", defRate, 0, 1e6, "task submissions per second per credential (per address when open); 0 turns the limit off (default 100 in prod, off in dev)")
	c.RateBurst = e.Int("APP_RATE_BURST", 200, 1, 1_000_000, "submissions a credential may make at once above APP_RATE_LIMIT")
	c.MaxPending = e.Int("QUEUE_MAX_PENDING", 100_000, 0, 100_000_000, "pending tasks a queue may hold before submissions to it get 429; 0 turns the cap off")
	c.MaxPayloadBytes = e.Int("TASK_MAX_PAYLOAD_BYTES", 64<<10, 1, 1<<20, "largest task payload accepted, in bytes")
	c.MaxMemory = e.Float("REDIS_MAX_MEMORY_USE", 0.9, 0, 1, "refuse submissions (503) when Redis used_memory reaches this fraction of its maxmemory; 0 turns it off")
	c.MaxLists = e.Int("APP_MAX_CONCURRENT_LISTS", 8, 1, 1000, "task lists and pages read from Redis at once; more wait briefly, then get 503")
	if c.ProxyHeader != "" {
		if c.ProxyCIDRs == "" {
			e.fail("APP_AUTH_PROXY_CIDRS", "required with APP_AUTH_PROXY_HEADER: the networks the proxy connects from")
		} else if _, err := parseCIDRs(c.ProxyCIDRs); err != nil {
			e.fail("APP_AUTH_PROXY_CIDRS", "%v", err)
		}
	}
	if prod {
		if c.TokensFile == "" && c.ProxyHeader == "" {
			e.fail("APP_TOKENS_FILE", "authentication is required when APP_ENV=prod: set APP_TOKENS_FILE (and APP_SESSION_KEY), or APP_AUTH_PROXY_HEADER and APP_AUTH_PROXY_CIDRS")
		}
		if c.TokensFile != "" {
			if c.SessionKey == "" {
				e.fail("APP_SESSION_KEY", "required when APP_ENV=prod with APP_TOKENS_FILE: it signs login sessions")
			} else if why := WeakSecret(c.SessionKey); why != "" {
				e.fail("APP_SESSION_KEY", "%s", why)
			}
		}
	}
	return c
}

// parseCIDRs checks "10.0.0.0/8,192.168.1.7".
func parseCIDRs(raw string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for s := range strings.SplitSeq(raw, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p)
		} else if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		} else {
			return nil, fmt.Errorf("%q is not an address or CIDR", s)
		}
	}
	return out, nil
}

// webhookHosts reads WEBHOOK_ALLOWED_HOSTS, which the app (to refuse a URL
// at enqueue time) and the worker (to deliver) share. Its entries are
// checked where the catalogue is built.
func webhookHosts(e *env) []string {
	raw := e.String("WEBHOOK_ALLOWED_HOSTS", "", "where demo:webhook may deliver: host names, *.domain, * (any public host), IPs or CIDRs (private, loopback and link-local addresses only when listed); empty: webhooks off")
	var out []string
	for h := range strings.SplitSeq(raw, ",") {
		if h = strings.TrimSpace(h); h != "" {
			out = append(out, h)
		}
	}
	return out
}

// retention reads TASK_RETENTION, which app and worker (for the periodic
// tasks it enqueues) share.
func retention(e *env) time.Duration {
	return e.Duration("TASK_RETENTION", 24*time.Hour, 0, 30*24*time.Hour, "how long completed tasks (and idempotency keys) are kept")
}

// Worker configures cmd/worker.
type Worker struct {
	Common
	AdminAddr      string
	Queues         map[string]int
	StrictPriority bool
	Concurrency    int
	// Servers is the number of asynq dequeue loops; 0 with AutoServers.
	Servers int
	// AutoServers runs between 1 and ServersMax loops as the backlog asks
	// (WORKER_SERVERS=auto).
	AutoServers       bool
	ServersMax        int
	ShutdownTimeout   time.Duration
	TaskCheckInterval time.Duration
	MaxResultBytes    int
	// Retention is how long completed tasks the worker enqueues (periodic
	// tasks) are kept, as TASK_RETENTION is for the app's.
	Retention time.Duration
	// ScheduleFile is the YAML file of periodic tasks; none when empty.
	ScheduleFile string
	// WebhookAllowedHosts is where demo:webhook may deliver.
	WebhookAllowedHosts []string
	// CanaryInterval is how often a canary task runs on each queue; zero
	// turns the canary off.
	CanaryInterval time.Duration
	// RecoveryInterval and LeaseExpiryMargin set how soon the tasks of a
	// worker that died run again (docs/reliability.md).
	RecoveryInterval  time.Duration
	LeaseExpiryMargin time.Duration
}

// DefaultConcurrency suits I/O-bound tasks such as demo:echo, which mostly
// sleep: many can wait at once on one core.
const DefaultConcurrency = 20

// LoadWorker reads the worker's configuration.
func LoadWorker(getenv func(string) string) (Worker, error) {
	e := newEnv(getenv)
	c := loadWorker(e)
	return c, e.err()
}

func loadWorker(e *env) Worker {
	c := Worker{Common: loadCommon(e, "redis://localhost:6379/0")}
	c.AdminAddr = e.Addr("WORKER_ADMIN_ADDR", ":9090", "listen address of /metrics, /healthz and /readyz")
	raw := e.String("WORKER_QUEUES", "high:6,default:3,low:1", "queues and weights, name:weight,...")
	q, err := ParseQueues(raw)
	if err != nil {
		e.fail("WORKER_QUEUES", "%v", err)
		q, _ = ParseQueues("high:6,default:3,low:1")
	}
	c.Queues = q
	c.StrictPriority = e.Bool("WORKER_STRICT_PRIORITY", false, "process queues in strict order high > default > low instead of by weight")
	c.Concurrency = e.Int("WORKER_CONCURRENCY", DefaultConcurrency, 1, 10000, "tasks processed at once per dequeue loop (I/O-bound default)")
	c.Servers, c.AutoServers = servers(e)
	c.ServersMax = e.Int("WORKER_SERVERS_MAX", 4, 1, 64, "with WORKER_SERVERS=auto, the most dequeue loops one process runs")
	c.ShutdownTimeout = e.Duration("WORKER_SHUTDOWN_TIMEOUT", 25*time.Second, time.Second, 10*time.Minute, "time in-flight tasks get to finish on SIGTERM before asynq requeues them")
	c.MaxResultBytes = e.Int("TASK_MAX_RESULT_BYTES", 1<<20, 1, 64<<20, "largest result a task may store, in bytes; a larger one fails the task without retries")
	c.TaskCheckInterval = e.Duration("WORKER_TASK_CHECK_INTERVAL", 10*time.Millisecond, time.Millisecond, time.Minute, "how long an idle dequeue loop sleeps between polls (latency floor vs idle Redis load)")
	c.Retention = retention(e)
	c.WebhookAllowedHosts = webhookHosts(e)
	c.ScheduleFile = e.String("SCHEDULE_FILE", "", "YAML file of periodic tasks, run by every worker replica, each tick once (docs/schedule.md); none when empty")
	c.CanaryInterval = e.Duration("CANARY_INTERVAL", 15*time.Second, 0, time.Hour, "how often one canary:ping task runs on each queue, end to end (once per deployment whatever the replicas); 0 turns the canary off")
	if c.CanaryInterval > 0 && c.CanaryInterval < time.Second {
		e.fail("CANARY_INTERVAL", "%s is below 1s (0 turns the canary off)", c.CanaryInterval)
	}
	c.RecoveryInterval = e.Duration("WORKER_RECOVERY_INTERVAL", 2*time.Second, time.Second, 10*time.Minute, "how often a worker looks for tasks whose worker died (lease expired) and retries them")
	c.LeaseExpiryMargin = e.Duration("WORKER_LEASE_EXPIRY_MARGIN", 5*time.Second, time.Second, 10*time.Minute, "how long a lease must have been expired before its task is retried elsewhere: above the clock skew between worker hosts")
	return c
}

// DefaultServers is WORKER_SERVERS's default: one loop. auto is opt-in:
// each loop has WORKER_CONCURRENCY slots, so auto can run up to
// WORKER_SERVERS_MAX times as many tasks at once, and its throughput target
// was not shown on the shared bench machine (docs/benchmarks.md).
const DefaultServers = "1"

// servers reads WORKER_SERVERS: a number of dequeue loops, or auto.
func servers(e *env) (int, bool) {
	raw := strings.TrimSpace(e.String("WORKER_SERVERS", DefaultServers, "asynq dequeue loops in this process, each with WORKER_CONCURRENCY slots: a fixed number from 1 to 64, or auto (one while the queues are short, up to WORKER_SERVERS_MAX under a backlog, shed after 30s of quiet; up to WORKER_SERVERS_MAX × WORKER_CONCURRENCY tasks at once)"))
	if strings.EqualFold(raw, "auto") {
		return 0, true
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > 64 {
		e.fail("WORKER_SERVERS", "%q is neither auto nor a number of loops from 1 to 64", raw)
		return 1, false
	}
	return n, false
}

// ParseQueues parses "high:6,default:3,low:1" (a missing weight is 1).
// It checks the syntax only: which queue names exist is the task
// catalogue's business, checked where the worker is wired.
func ParseQueues(raw string) (map[string]int, error) {
	out := map[string]int{}
	for part := range strings.SplitSeq(raw, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, w, ok := strings.Cut(part, ":")
		if !ok {
			w = "1"
		}
		name = strings.TrimSpace(name)
		if name == "" {
			return nil, fmt.Errorf("empty queue name in %q", part)
		}
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 1 || n > 1000 {
			return nil, fmt.Errorf("weight of %q must be an integer from 1 to 1000, got %q", name, w)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("queue %q listed twice", name)
		}
		out[name] = n
	}
	if len(out) == 0 {
		return nil, errors.New("no queue given")
	}
	return out, nil
}

// Monitor configures cmd/monitor.
type Monitor struct {
	Common
	Addr            string
	RootPath        string
	Username        string
	Password        string
	ReadOnly        bool
	PrometheusURL   string
	ShutdownTimeout time.Duration
}

// LoadMonitor reads the monitor's configuration.
func LoadMonitor(getenv func(string) string) (Monitor, error) {
	e := newEnv(getenv)
	c := loadMonitor(e)
	return c, e.err()
}

func loadMonitor(e *env) Monitor {
	c := Monitor{Common: loadCommon(e, "redis://localhost:6379/0")}
	c.Addr = e.Addr("MONITOR_ADDR", ":8081", "listen address of the asynqmon dashboard")
	c.RootPath = strings.TrimSuffix(e.String("MONITOR_ROOT_PATH", "/", "path prefix of the dashboard, e.g. /monitor"), "/")
	if !validRootPath.MatchString(c.RootPath) || (c.RootPath != "" && path.Clean(c.RootPath) != c.RootPath) {
		// It becomes part of ServeMux patterns, where "{" or a space would
		// change their meaning and a "." or ".." segment makes ServeMux
		// panic (found by FuzzRootPath).
		e.fail("MONITOR_ROOT_PATH", "%q must be / or /segments of letters, digits, '-', '_', '.', '~' (not . or ..)", c.RootPath+"/")
		c.RootPath = ""
	}
	c.Username = e.String("MONITOR_USERNAME", "", "basic-auth user of the dashboard (required in prod)")
	c.Password = e.Secret("MONITOR_PASSWORD", "basic-auth password of the dashboard (required in prod)")
	c.ReadOnly = e.Bool("MONITOR_READ_ONLY", c.Prod(), "refuse every mutating dashboard call (default true in prod)")
	c.PrometheusURL = e.URL("MONITOR_PROMETHEUS_URL", "Prometheus base URL for the dashboard's metrics view")
	c.ShutdownTimeout = e.Duration("MONITOR_SHUTDOWN_TIMEOUT", 15*time.Second, time.Second, 5*time.Minute, "how long in-flight dashboard requests may take to finish on SIGTERM (above the metrics view's 10s Prometheus timeout)")
	if (c.Username == "") != (c.Password == "") {
		e.fail("MONITOR_PASSWORD", "MONITOR_USERNAME and MONITOR_PASSWORD must be set together")
	}
	if c.Prod() {
		if c.Username == "" || c.Password == "" {
			e.fail("MONITOR_PASSWORD", "authentication is required when APP_ENV=prod: set MONITOR_USERNAME and MONITOR_PASSWORD")
		} else if why := WeakSecret(c.Password); why != "" {
			e.fail("MONITOR_PASSWORD", "%s", why)
		}
	}
	return c
}

// Devstack configures cmd/devstack: the app, worker and monitor in one
// process. An empty REDIS_URL starts an embedded in-memory Redis.
type Devstack struct {
	App     App
	Worker  Worker
	Monitor Monitor
}

// Base returns the common part: logs and tracing follow the app's.
func (d Devstack) Base() Common { return d.App.Common }

// LoadDevstack reads the dev stack's configuration.
func LoadDevstack(getenv func(string) string) (Devstack, error) {
	e := newEnv(getenv)
	var d Devstack
	d.App = loadApp(e)
	d.Worker = loadWorker(e)
	d.Monitor = loadMonitor(e)
	// One process, one Redis: embedded unless REDIS_URL is set.
	url := strings.TrimSpace(e.getenv("REDIS_URL"))
	d.App.Redis.URL, d.Worker.Redis.URL, d.Monitor.Redis.URL = url, url, url
	return d, e.err()
}

// Vars lists, in order and without duplicates, the variables a binary reads:
// "app", "worker", "monitor" or "devstack".
func Vars(binary string) []Var {
	e := newEnv(nil)
	switch binary {
	case "app":
		loadApp(e)
	case "worker":
		loadWorker(e)
	case "monitor":
		loadMonitor(e)
	case "devstack":
		loadApp(e)
		loadWorker(e)
		loadMonitor(e)
	default:
		return nil
	}
	seen := map[string]bool{}
	var out []Var
	for _, v := range e.vars {
		if !seen[v.Name] {
			seen[v.Name] = true
			out = append(out, v)
		}
	}
	return out
}

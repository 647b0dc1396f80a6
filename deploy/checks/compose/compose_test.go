package compose

import (
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/google/go-cmp/cmp"
)

// ours are the taskstack services: hardened, built from this repository.
var ours = []string{"app", "worker", "monitor"}

func TestComposeLoadsPerEnvironment(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		env      string
		services []string
	}{
		{"dev", []string{"app", "grafana", "jaeger", "monitor", "prometheus", "redis", "redis-port", "worker"}},
		{"prod", []string{"app", "grafana", "jaeger", "monitor", "prometheus", "redis", "worker"}},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			t.Parallel()
			p := b.mustLoad(t, tt.env)
			if diff := cmp.Diff(tt.services, slices.Sorted(maps.Keys(p.Services))); diff != "" {
				t.Errorf("services (-want +got):\n%s", diff)
			}
			if want := "taskstack-" + tt.env; p.Name != want {
				t.Errorf("project name = %q, want %q (separate volumes per environment)", p.Name, want)
			}
			for name, s := range p.Services {
				checkService(t, p, name, s)
			}
			for _, name := range ours {
				checkHardened(t, p.Services[name])
			}
		})
	}
}

var pinnedTag = regexp.MustCompile(`^[a-z0-9./-]+:v?\d+\.\d+(\.\d+)*(-[a-z0-9.]+)?$`)

// checkService asserts what every service must have.
func checkService(t *testing.T, p *types.Project, name string, s types.ServiceConfig) {
	t.Helper()
	hc := s.HealthCheck
	if hc == nil || hc.Disable || len(hc.Test) < 2 || hc.Test[0] == "NONE" {
		t.Errorf("%s: no healthcheck", name)
	}
	switch {
	case s.Build != nil:
		// Built here and tagged with the version: taskstack/<image>:<VERSION>.
		if !strings.HasPrefix(s.Image, "taskstack/") || strings.HasSuffix(s.Image, ":latest") || !strings.Contains(s.Image, ":") {
			t.Errorf("%s: built image is named %q, want taskstack/<name>:<version>", name, s.Image)
		}
	case !pinnedTag.MatchString(s.Image):
		t.Errorf("%s: image %q is not pinned to a version tag", name, s.Image)
	}
	if s.Restart != types.RestartPolicyUnlessStopped {
		t.Errorf("%s: restart = %q, want unless-stopped", name, s.Restart)
	}
	if s.Logging == nil || s.Logging.Options["max-size"] == "" || s.Logging.Options["max-file"] == "" {
		t.Errorf("%s: no log rotation (logging.options max-size and max-file)", name)
	}
	if s.Deploy == nil || s.Deploy.Resources.Limits == nil || s.Deploy.Resources.Limits.MemoryBytes == 0 || s.Deploy.Resources.Limits.NanoCPUs == 0 {
		t.Errorf("%s: no cpu and memory limits", name)
	}
	for dep, d := range s.DependsOn {
		if d.Condition != types.ServiceConditionHealthy {
			t.Errorf("%s: depends_on %s with condition %q, want service_healthy", name, dep, d.Condition)
		}
		if _, ok := p.Services[dep]; !ok {
			t.Errorf("%s: depends on %s, which does not run", name, dep)
		}
	}
}

func checkHardened(t *testing.T, s types.ServiceConfig) {
	t.Helper()
	if !s.ReadOnly {
		t.Errorf("%s: read_only is not true", s.Name)
	}
	if !slices.Equal(s.CapDrop, []string{"ALL"}) || len(s.CapAdd) > 0 {
		t.Errorf("%s: cap_drop = %v, cap_add = %v; want [ALL] and nothing added", s.Name, s.CapDrop, s.CapAdd)
	}
	if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
		t.Errorf("%s: security_opt lacks no-new-privileges:true: %v", s.Name, s.SecurityOpt)
	}
	if !slices.Contains(s.Tmpfs, "/tmp") {
		t.Errorf("%s: no tmpfs on /tmp: %v", s.Name, s.Tmpfs)
	}
	if s.Privileged || s.User == "0" || s.User == "root" {
		t.Errorf("%s: runs privileged or as root", s.Name)
	}
	for _, r := range []string{"redis", "jaeger"} {
		if d, ok := s.DependsOn[r]; !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("%s: does not wait for a healthy %s", s.Name, r)
		}
	}
	bin := "/" + s.Name
	if want := []string{"CMD", bin, "healthcheck"}; s.HealthCheck == nil || !slices.Equal([]string(s.HealthCheck.Test), want) {
		t.Errorf("%s: healthcheck %v, want exec form %v (no shell in distroless)", s.Name, s.HealthCheck, want)
	}
	if s.Name == "monitor" && !slices.Equal([]string(s.Entrypoint), []string{"/monitor"}) {
		t.Errorf("monitor: entrypoint %v, want [/monitor] (it runs from the app image)", s.Entrypoint)
	}
}

func TestComposeProdIsHardened(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.mustLoad(t, "prod")

	redis := p.Services["redis"]
	if len(redis.Ports) > 0 {
		t.Errorf("prod redis publishes %v", redis.Ports)
	}
	for name, s := range p.Services {
		for _, port := range s.Ports {
			if port.Target == 6379 {
				t.Errorf("prod %s publishes Redis' port: %+v", name, port)
			}
		}
	}
	if nets := slices.Sorted(maps.Keys(redis.Networks)); !slices.Equal(nets, []string{"backend"}) {
		t.Errorf("prod redis networks = %v, want [backend] only", nets)
	}
	if !p.Networks["backend"].Internal {
		t.Error("backend network is not internal")
	}
	if len(redis.Volumes) == 0 || redis.Volumes[0].Type != types.VolumeTypeVolume || redis.Volumes[0].Target != "/data" {
		t.Errorf("prod redis has no named volume on /data: %+v", redis.Volumes)
	}
	// Only the app and Grafana (both with auth) face the world.
	for name, s := range p.Services {
		for _, port := range s.Ports {
			public := port.HostIP == "" || port.HostIP == "0.0.0.0" || port.HostIP == "::"
			if public && name != "app" && name != "grafana" {
				t.Errorf("prod %s published on every interface: %+v", name, port)
			}
		}
	}

	worker := p.Services["worker"]
	if n := worker.GetScale(); n < 2 {
		t.Errorf("prod worker replicas = %d, want at least 2", n)
	}
	mon := envOf(t, p.Services["monitor"])
	if mon["MONITOR_READ_ONLY"] != "true" || mon["MONITOR_USERNAME"] == "" || mon["MONITOR_PASSWORD"] != prodSecrets["MONITOR_PASSWORD"] {
		t.Errorf("prod monitor must be read-only with auth from the secret: %v", redactSecrets(mon))
	}
	for _, name := range ours {
		e := envOf(t, p.Services[name])
		ratio, err := strconv.ParseFloat(e["OTEL_TRACES_SAMPLER_ARG"], 64)
		if err != nil || ratio <= 0 || ratio >= 1 || !strings.Contains(e["OTEL_TRACES_SAMPLER"], "traceidratio") {
			t.Errorf("prod %s samples %q %q, want a ratio in (0,1)", name, e["OTEL_TRACES_SAMPLER"], e["OTEL_TRACES_SAMPLER_ARG"])
		}
		if e["APP_ENV"] != "prod" || e["LOG_FORMAT"] != "json" {
			t.Errorf("prod %s: APP_ENV=%q LOG_FORMAT=%q", name, e["APP_ENV"], e["LOG_FORMAT"])
		}
	}
	g := envOf(t, p.Services["grafana"])
	if g["GF_AUTH_ANONYMOUS_ENABLED"] != "false" || g["GF_SECURITY_ADMIN_PASSWORD"] != prodSecrets["GRAFANA_ADMIN_PASSWORD"] {
		t.Errorf("prod grafana: anonymous %q, admin password from the secret: %v",
			g["GF_AUTH_ANONYMOUS_ENABLED"], g["GF_SECURITY_ADMIN_PASSWORD"] == prodSecrets["GRAFANA_ADMIN_PASSWORD"])
	}
}

func TestComposeDevIsLocal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.mustLoad(t, "dev")
	for name, s := range p.Services {
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("dev %s published on %q, want 127.0.0.1 only", name, port.HostIP)
			}
		}
	}
	rp := p.Services["redis-port"]
	if len(rp.Ports) != 1 || rp.Ports[0].Published != "6379" || rp.Ports[0].HostIP != "127.0.0.1" {
		t.Errorf("dev Redis should be reachable on 127.0.0.1:6379: %+v", rp.Ports)
	}
	published := map[string]string{}
	for name, s := range p.Services {
		for _, port := range s.Ports {
			published[name] = port.Published
		}
	}
	want := map[string]string{"app": "8080", "monitor": "8081", "grafana": "3000", "prometheus": "9090", "jaeger": "16686", "redis-port": "6379"}
	if diff := cmp.Diff(want, published); diff != "" {
		t.Errorf("dev published ports (-want +got):\n%s", diff)
	}
	for _, name := range ours {
		e := envOf(t, p.Services[name])
		if e["LOG_LEVEL"] != "debug" || e["OTEL_TRACES_SAMPLER_ARG"] != "1.0" {
			t.Errorf("dev %s: LOG_LEVEL=%q sampling %q, want debug and 1.0", name, e["LOG_LEVEL"], e["OTEL_TRACES_SAMPLER_ARG"])
		}
	}
	if m := envOf(t, p.Services["monitor"]); m["MONITOR_USERNAME"] != "" || m["MONITOR_PASSWORD"] != "" {
		t.Errorf("dev monitor should run without auth")
	}
}

func TestComposeTimeoutsAndMemory(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, env := range envs {
		p := b.mustLoad(t, env)
		for _, name := range ours {
			s := p.Services[name]
			e := envOf(t, s)
			// GOMEMLIMIT below the container's memory limit, with headroom.
			limit := int64(s.Deploy.Resources.Limits.MemoryBytes)
			soft, err := parseGoMemLimit(e["GOMEMLIMIT"])
			if err != nil || soft <= 0 || soft > limit*9/10 {
				t.Errorf("%s %s: GOMEMLIMIT %q (%d) must be at most 90%% of the memory limit %d (%v)", env, name, e["GOMEMLIMIT"], soft, limit, err)
			}
			// docker waits stop_grace_period before SIGKILL: the binary's own
			// shutdown timeout must fit, with room to flush telemetry.
			key := map[string]string{"app": "APP_SHUTDOWN_TIMEOUT", "worker": "WORKER_SHUTDOWN_TIMEOUT"}[name]
			if key == "" {
				continue
			}
			d, err := time.ParseDuration(e[key])
			if err != nil {
				t.Errorf("%s %s: %s=%q: %v", env, name, key, e[key], err)
				continue
			}
			if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) < d+5*time.Second {
				t.Errorf("%s %s: stop_grace_period %v must exceed %s=%s by at least 5s", env, name, s.StopGracePeriod, key, d)
			}
		}
	}
}

// parseGoMemLimit parses the runtime's GOMEMLIMIT syntax (e.g. 200MiB).
func parseGoMemLimit(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}}
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			return v * u.mult, err
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

func TestComposeRefusesMissingProdSecret(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for secret := range prodSecrets {
		t.Run(secret, func(t *testing.T) {
			t.Parallel()
			env := maps.Clone(prodSecrets)
			delete(env, secret)
			_, err := b.load(t, "prod", env)
			if err == nil {
				t.Fatalf("compose loaded with .env.prod and no %s", secret)
			}
			t.Logf("compose says: %v", err)
			if !strings.Contains(err.Error(), secret+" is required") {
				t.Errorf("error %q does not say %s is required", err, secret)
			}
		})
	}
	// An empty value is as good as none for the secrets compose itself needs.
	for _, secret := range []string{"REDIS_PASSWORD", "GRAFANA_ADMIN_PASSWORD"} {
		env := maps.Clone(prodSecrets)
		env[secret] = ""
		if _, err := b.load(t, "prod", env); err == nil || !strings.Contains(err.Error(), secret) {
			t.Errorf("compose accepted an empty %s: %v", secret, err)
		}
	}
}

func TestEnvFilesHoldNoProdSecret(t *testing.T) {
	t.Parallel()
	b := setup(t)
	prod, err := dotenv.GetEnvFromFile(nil, []string{b.envFile("prod")})
	if err != nil {
		t.Fatal(err)
	}
	for secret := range prodSecrets {
		if v, ok := prod[secret]; ok {
			t.Errorf(".env.prod sets %s (%d characters): secrets come from the environment or deploy/compose/secrets/prod.env", secret, len(v))
		}
	}
	// The example lists exactly the secrets compose requires, with no value.
	ex, err := dotenv.GetEnvFromFile(nil, []string{b.composeDir + "/secrets/prod.env.example"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(slices.Sorted(maps.Keys(prodSecrets)), slices.Sorted(maps.Keys(ex))); diff != "" {
		t.Errorf("secrets/prod.env.example keys (-want +got):\n%s", diff)
	}
	for k, v := range ex {
		if v != "" {
			t.Errorf("secrets/prod.env.example gives %s a value", k)
		}
	}
}

// The Redis password reaches redis-server and redis-cli through the
// environment and a generated config file: never through argv, where any
// user of the host sees it in ps.
func TestComposeRedisPasswordNotInArgv(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.mustLoad(t, "prod")
	for name, s := range p.Services {
		var argv []string
		argv = append(argv, s.Entrypoint...)
		argv = append(argv, s.Command...)
		if s.HealthCheck != nil {
			argv = append(argv, s.HealthCheck.Test...)
		}
		for _, a := range argv {
			for k, secret := range prodSecrets {
				if strings.Contains(a, secret) {
					t.Errorf("%s: %s appears on a command line: %q", name, k, a)
				}
			}
		}
	}
	redis := envOf(t, p.Services["redis"])
	if redis["REDISCLI_AUTH"] != prodSecrets["REDIS_PASSWORD"] {
		t.Error("redis: REDISCLI_AUTH (read by redis-cli and the entrypoint) is not the Redis password")
	}
	script := strings.Join(p.Services["redis"].Command, " ")
	for _, want := range []string{`"$REDISCLI_AUTH"`, "requirepass", "include /usr/local/etc/redis/redis.conf", "exec docker-entrypoint.sh redis-server /tmp/redis.conf"} {
		if !strings.Contains(script, want) {
			t.Errorf("redis command does not contain %q:\n%s", want, script)
		}
	}
}

func redactSecrets(m map[string]string) map[string]string {
	out := maps.Clone(m)
	for k := range out {
		if strings.Contains(k, "PASSWORD") && out[k] != "" {
			out[k] = "<redacted>"
		}
	}
	return out
}

package k8s

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"taskstack/internal/config"
)

// envValue is one variable a container gets, and where it comes from.
type envValue struct {
	value  string
	source string // "configmap <name>", "secret <name>", "literal", "downward"
}

func (e envValue) fromSecret() bool { return strings.HasPrefix(e.source, "secret ") }

// resolveEnv computes a container's environment as the kubelet would:
// envFrom first, then env (which wins), with ConfigMap and Secret values
// looked up in the rendered output and resource limits in the container.
// A variable given twice is an error: the reader cannot tell which wins.
func resolveEnv(t *testing.T, r *rendered, p podTemplate, c corev1.Container) map[string]envValue {
	t.Helper()
	out := map[string]envValue{}
	set := func(name string, v envValue) {
		if prev, dup := out[name]; dup {
			t.Errorf("%s container %s: %s set twice (%s and %s)", p.owner, c.Name, name, prev.source, v.source)
		}
		out[name] = v
	}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm := r.configMap(t, ef.ConfigMapRef.Name)
			for k, v := range cm.Data {
				set(ef.Prefix+k, envValue{v, "configmap " + cm.Name})
			}
		case ef.SecretRef != nil:
			s := r.secret(t, ef.SecretRef.Name)
			for k, v := range s.Data {
				set(ef.Prefix+k, envValue{string(v), "secret " + s.Name})
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			set(e.Name, envValue{e.Value, "literal"})
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			cm := r.configMap(t, ref.Name)
			v, ok := cm.Data[ref.Key]
			if !ok {
				t.Errorf("%s: %s: ConfigMap %s has no key %s", p.owner, e.Name, ref.Name, ref.Key)
			}
			set(e.Name, envValue{v, "configmap " + cm.Name})
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s := r.secret(t, ref.Name)
			v, ok := s.Data[ref.Key]
			if !ok {
				t.Errorf("%s: %s: Secret %s has no key %s", p.owner, e.Name, ref.Name, ref.Key)
			}
			set(e.Name, envValue{string(v), "secret " + s.Name})
		case e.ValueFrom.ResourceFieldRef != nil:
			ref := e.ValueFrom.ResourceFieldRef
			var q string
			switch ref.Resource {
			case "limits.memory":
				q = fmt.Sprint(c.Resources.Limits.Memory().Value())
			case "requests.memory":
				q = fmt.Sprint(c.Resources.Requests.Memory().Value())
			default:
				t.Errorf("%s: %s from %s: not modelled by this test", p.owner, e.Name, ref.Resource)
			}
			set(e.Name, envValue{q, "downward"})
		default:
			set(e.Name, envValue{"", "downward"})
		}
	}
	return out
}

// required are the variables Kubernetes must set explicitly, on top of the
// secrets: the defaults (localhost Redis, dev mode) would be wrong in a
// cluster, and the addresses are what the probes and Services point at.
var required = map[string][]string{
	"app":     {"APP_ENV", "REDIS_URL", "GOMEMLIMIT", "APP_ADDR", "APP_SHUTDOWN_TIMEOUT"},
	"worker":  {"APP_ENV", "REDIS_URL", "GOMEMLIMIT", "WORKER_ADMIN_ADDR", "WORKER_QUEUES", "WORKER_SHUTDOWN_TIMEOUT"},
	"monitor": {"APP_ENV", "REDIS_URL", "GOMEMLIMIT", "MONITOR_ADDR", "MONITOR_USERNAME"},
}

// TestEnvMatchesConfig compares each container's environment with what its
// binary reads (config.Vars, the source of truth the compose check uses
// too): nothing unknown, nothing required missing, every secret from a
// Secret and none in a ConfigMap.
func TestEnvMatchesConfig(t *testing.T) {
	t.Parallel()
	secretNames := map[string]bool{}
	for _, v := range config.Vars("devstack") {
		if v.Secret {
			secretNames[v.Name] = true
		}
	}
	if len(secretNames) == 0 {
		t.Fatal("config.Vars lists no secret variable")
	}
	for _, v := range variants() {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			r := build(t, v, realSecrets)
			for _, o := range r.find("ConfigMap") {
				for k := range decode[corev1.ConfigMap](t, o).Data {
					if secretNames[k] {
						t.Errorf("%s holds %s, a secret: move it to a Secret", o, k)
					}
				}
			}
			for _, p := range r.pods(t) {
				for _, c := range p.spec.Containers {
					bin := binary(c)
					if bin == "" {
						continue
					}
					where := p.owner.String() + " container " + c.Name
					reads := map[string]config.Var{}
					for _, cv := range config.Vars(bin) {
						reads[cv.Name] = cv
					}
					if len(reads) == 0 {
						t.Errorf("%s: config.Vars(%q) is empty", where, bin)
						continue
					}
					env := resolveEnv(t, r, p, c)
					for name, e := range env {
						cv, ok := reads[name]
						switch {
						case !ok:
							t.Errorf("%s: %s (from %s) is not read by %s", where, name, e.source, bin)
						case cv.Secret && !e.fromSecret():
							t.Errorf("%s: secret %s comes from %s, not a Secret", where, name, e.source)
						}
					}
					for _, cv := range reads {
						if _, ok := env[cv.Name]; cv.Secret && !ok {
							t.Errorf("%s: secret %s is not set", where, cv.Name)
						}
					}
					for _, name := range required[bin] {
						if _, ok := env[name]; !ok {
							t.Errorf("%s: %s must be set", where, name)
						}
					}
				}
			}
		})
	}
}

// load runs the binary's own configuration loader on an environment.
func load(bin string, env map[string]envValue) error {
	getenv := func(k string) string { return env[k].value }
	var err error
	switch bin {
	case "app":
		_, err = config.LoadApp(getenv)
	case "worker":
		_, err = config.LoadWorker(getenv)
	case "monitor":
		_, err = config.LoadMonitor(getenv)
	default:
		err = fmt.Errorf("no loader for %q", bin)
	}
	return err
}

// TestEnvLoads feeds each container's rendered environment to its binary's
// configuration loader: dev starts with the example secrets; prod starts
// with real secrets and refuses the examples' placeholders.
func TestEnvLoads(t *testing.T) {
	t.Parallel()
	for _, v := range variants() {
		for _, mode := range []secretMode{examples, realSecrets} {
			name := v.String() + map[secretMode]string{examples: "/example-secrets", realSecrets: "/real-secrets"}[mode]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				r := build(t, v, mode)
				for _, p := range r.pods(t) {
					for _, c := range p.spec.Containers {
						bin := binary(c)
						if bin == "" {
							continue
						}
						env := resolveEnv(t, r, p, c)
						if got := env["APP_ENV"].value; got != v.env {
							t.Errorf("%s: APP_ENV=%q in overlay %s", p.owner, got, v.env)
						}
						err := load(bin, env)
						refuse := v.env == "prod" && mode == examples
						switch {
						case refuse && err == nil:
							t.Errorf("%s: %s accepted the example (placeholder) secrets in prod", p.owner, bin)
						case refuse && !strings.Contains(err.Error(), "placeholder"):
							t.Errorf("%s: %s refused the example secrets, but not as placeholders: %v", p.owner, bin, err)
						case !refuse && err != nil:
							t.Errorf("%s: %s refuses its environment: %v", p.owner, bin, err)
						}
					}
				}
			})
		}
	}
}

// TestSecretExamples checks the committed examples: every key is a secret
// some binary reads (or Redis' own), and each overlay has the same files.
func TestSecretExamples(t *testing.T) {
	t.Parallel()
	r := build(t, variant{env: "prod"}, examples)
	var names []string
	for _, o := range r.find("Secret") {
		s := decode[corev1.Secret](t, o)
		for k := range s.Data {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	var want []string
	for _, v := range config.Vars("devstack") {
		if v.Secret {
			want = append(want, v.Name)
		}
	}
	// Files mounted from Secrets: the app's tokens file (APP_TOKENS_FILE).
	want = append(want, "tokens")
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("Secret keys %v, want exactly the secrets the binaries read %v", names, want)
	}
	d := build(t, variant{env: "dev"}, examples)
	if got, want := len(d.find("Secret")), len(r.find("Secret")); got != want {
		t.Errorf("dev has %d Secrets, prod %d", got, want)
	}
}

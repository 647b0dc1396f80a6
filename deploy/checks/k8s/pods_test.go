package k8s

import (
	"net"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"

	"taskstack/internal/config"
)

// TestPodSecurityRestricted runs every pod template through the Pod
// Security Admission library at the restricted level, the check the
// namespace labels make the API server run.
func TestPodSecurityRestricted(t *testing.T) {
	t.Parallel()
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	lv := psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}
	for _, v := range variants() {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			r := build(t, v, examples)
			for _, p := range r.pods(t) {
				for _, res := range evaluator.EvaluatePod(lv, &p.meta, &p.spec) {
					if !res.Allowed {
						t.Errorf("%s: restricted: %s: %s", p.owner, res.ForbiddenReason, res.ForbiddenDetail)
					}
				}
			}
		})
	}
}

// TestPodsHardened checks what restricted does not require but a cluster
// admin expects: no API token, read-only root filesystem with a writable
// /tmp, requests and a memory limit, all three probes, GOMEMLIMIT from the
// limit.
func TestPodsHardened(t *testing.T) {
	t.Parallel()
	for _, v := range variants() {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			r := build(t, v, examples)
			for _, p := range r.pods(t) {
				if p.spec.AutomountServiceAccountToken == nil || *p.spec.AutomountServiceAccountToken {
					t.Errorf("%s: automountServiceAccountToken must be false", p.owner)
				}
				emptyDirs := map[string]bool{}
				for _, vol := range p.spec.Volumes {
					if vol.EmptyDir != nil {
						emptyDirs[vol.Name] = true
						if vol.EmptyDir.SizeLimit == nil {
							t.Errorf("%s: emptyDir %s has no sizeLimit", p.owner, vol.Name)
						}
					}
				}
				for _, c := range append(p.spec.InitContainers, p.spec.Containers...) {
					where := p.owner.String() + " container " + c.Name
					sc := c.SecurityContext
					if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
						t.Errorf("%s: readOnlyRootFilesystem must be true", where)
					}
					tmp := false
					for _, m := range c.VolumeMounts {
						tmp = tmp || (m.MountPath == "/tmp" && emptyDirs[m.Name])
					}
					if !tmp {
						t.Errorf("%s: no emptyDir on /tmp", where)
					}
					req, lim := c.Resources.Requests, c.Resources.Limits
					if req.Cpu().IsZero() || req.Memory().IsZero() {
						t.Errorf("%s: needs cpu and memory requests", where)
					}
					if lim.Memory().IsZero() {
						t.Errorf("%s: needs a memory limit", where)
					} else if lim.Memory().Cmp(*req.Memory()) < 0 {
						t.Errorf("%s: memory limit below request", where)
					}
					if c.StartupProbe == nil || c.LivenessProbe == nil || c.ReadinessProbe == nil {
						t.Errorf("%s: needs startup, liveness and readiness probes", where)
					}
					if binary(c) == "" {
						continue
					}
					var gomem *corev1.EnvVar
					for i := range c.Env {
						if c.Env[i].Name == "GOMEMLIMIT" {
							gomem = &c.Env[i]
						}
					}
					switch {
					case gomem == nil || gomem.ValueFrom == nil || gomem.ValueFrom.ResourceFieldRef == nil:
						t.Errorf("%s: GOMEMLIMIT must come from the downward API (resourceFieldRef)", where)
					default:
						ref := gomem.ValueFrom.ResourceFieldRef
						// GOMEMLIMIT is in bytes: the divisor must be 1, or
						// "256" would mean 256 bytes.
						if ref.Resource != "limits.memory" || (ref.ContainerName != "" && ref.ContainerName != c.Name) || (!ref.Divisor.IsZero() && ref.Divisor.Value() != 1) {
							t.Errorf("%s: GOMEMLIMIT from %+v, want limits.memory of this container with divisor 1", where, ref)
						}
					}
				}
			}
		})
	}
}

// served is what each binary serves on the port of its address variable,
// and the variable of the port its /metrics is on when that is another.
var served = map[string]struct {
	addrVar    string
	paths      []string
	metricsVar string
}{
	"app":     {"APP_ADDR", []string{"/healthz", "/readyz"}, "APP_ADMIN_ADDR"},
	"worker":  {"WORKER_ADMIN_ADDR", []string{"/healthz", "/readyz", "/metrics"}, ""},
	"monitor": {"MONITOR_ADDR", []string{"/healthz", "/readyz", "/metrics"}, ""},
}

// binary names the taskstack binary a container runs, or "" for others.
func binary(c corev1.Container) string {
	name, _, _ := strings.Cut(c.Image, ":")
	switch {
	case name == "taskstack/worker":
		return "worker"
	case name == "taskstack/app" && len(c.Command) == 0:
		return "app"
	case name == "taskstack/app" && len(c.Command) == 1 && c.Command[0] == "/monitor":
		return "monitor"
	case strings.HasPrefix(name, "taskstack/"):
		return "unknown " + c.Image + " " + strings.Join(c.Command, " ")
	}
	return ""
}

// TestProbes checks that the probes hit /healthz (startup, liveness) and
// /readyz (readiness) on the port the binary listens on, per the address
// variable it gets (or that variable's default).
func TestProbes(t *testing.T) {
	t.Parallel()
	for _, v := range variants() {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			r := build(t, v, realSecrets)
			seen := map[string]bool{}
			for _, p := range r.pods(t) {
				for _, c := range p.spec.Containers {
					bin := binary(c)
					if bin == "" {
						continue
					}
					s, ok := served[bin]
					if !ok {
						t.Errorf("%s: container %s runs %s", p.owner, c.Name, bin)
						continue
					}
					seen[bin] = true
					env := resolveEnv(t, r, p, c)
					addr := defaultOf(bin, s.addrVar)
					if e, ok := env[s.addrVar]; ok {
						addr = e.value
					}
					_, portStr, err := net.SplitHostPort(addr)
					if err != nil {
						t.Fatalf("%s: %s=%q: %v", p.owner, s.addrVar, addr, err)
					}
					port := intstr.Parse(portStr).IntVal
					for _, pr := range []struct {
						kind  string
						probe *corev1.Probe
						path  string
					}{
						{"startup", c.StartupProbe, "/healthz"},
						{"liveness", c.LivenessProbe, "/healthz"},
						{"readiness", c.ReadinessProbe, "/readyz"},
					} {
						if pr.probe == nil || pr.probe.HTTPGet == nil {
							t.Errorf("%s: %s probe must be an httpGet", p.owner, pr.kind)
							continue
						}
						got, ok := containerPort(corev1.PodSpec{Containers: []corev1.Container{c}}, pr.probe.HTTPGet.Port)
						if !ok || got != port {
							t.Errorf("%s: %s probe port %s = %d, but %s listens on %d (%s=%s)", p.owner, pr.kind, pr.probe.HTTPGet.Port.String(), got, bin, port, s.addrVar, addr)
						}
						if pr.probe.HTTPGet.Path != pr.path {
							t.Errorf("%s: %s probe path %q, want %q", p.owner, pr.kind, pr.probe.HTTPGet.Path, pr.path)
						}
					}
				}
			}
			for bin := range served {
				if !seen[bin] {
					t.Errorf("no container runs %s", bin)
				}
			}
		})
	}
}

// TestGracePeriods: Kubernetes must not SIGKILL a process before its own
// shutdown timeout has run out, with 10 s to spare.
func TestGracePeriods(t *testing.T) {
	t.Parallel()
	timeouts := map[string]string{"worker": "WORKER_SHUTDOWN_TIMEOUT", "app": "APP_SHUTDOWN_TIMEOUT"}
	for _, v := range variants() {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			r := build(t, v, realSecrets)
			for _, p := range r.pods(t) {
				for _, c := range p.spec.Containers {
					name, ok := timeouts[binary(c)]
					if !ok {
						continue
					}
					raw := defaultOf(binary(c), name)
					if e, ok := resolveEnv(t, r, p, c)[name]; ok {
						raw = e.value
					}
					d, err := time.ParseDuration(raw)
					if err != nil {
						t.Fatalf("%s: %s=%q: %v", p.owner, name, raw, err)
					}
					grace := 30 * time.Second // the Kubernetes default
					if p.spec.TerminationGracePeriodSeconds != nil {
						grace = time.Duration(*p.spec.TerminationGracePeriodSeconds) * time.Second
					}
					if grace < d+10*time.Second {
						t.Errorf("%s: terminationGracePeriodSeconds %s < %s (%s) + 10s", p.owner, grace, name, d)
					}
				}
			}
		})
	}
}

// defaultOf is a variable's default per internal/config.
func defaultOf(bin, name string) string {
	for _, v := range config.Vars(bin) {
		if v.Name == name {
			return v.Default
		}
	}
	return ""
}

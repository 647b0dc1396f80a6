package k8s

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestManagedRedisExample builds deploy/k8s/examples/managed-redis, the
// overlay the docs point to for a managed Redis: no Redis objects left,
// REDIS_URL points outside, egress allows it, every binary accepts its
// environment.
func TestManagedRedisExample(t *testing.T) {
	t.Parallel()
	root := stageForTest(t, realSecrets)
	r, err := buildPath(filepath.Join(root, "examples", "managed-redis"), variant{env: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range r.objects {
		if o.name == "redis" || o.name == "redis-ingress" || strings.HasPrefix(o.name, "redis-config") || o.gvk.Kind == "StatefulSet" {
			t.Errorf("%s is still there", o)
		}
	}
	for _, p := range r.pods(t) {
		for _, c := range p.spec.Containers {
			bin := binary(c)
			if bin == "" {
				continue
			}
			env := resolveEnv(t, r, p, c)
			u, err := url.Parse(env["REDIS_URL"].value)
			if err != nil || u.Scheme != "rediss" || u.Port() != "6380" {
				t.Errorf("%s: REDIS_URL=%q, want the example's rediss://...:6380", p.owner, env["REDIS_URL"].value)
			}
			if err := load(bin, env); err != nil {
				t.Errorf("%s: %s refuses its environment: %v", p.owner, bin, err)
			}
		}
	}
	np := decode[networkingv1.NetworkPolicy](t, r.get(t, "NetworkPolicy", "redis-clients-egress"))
	ok := false
	for _, rule := range np.Spec.Egress {
		for _, port := range rule.Ports {
			ok = ok || (port.Port != nil && *port.Port == intstr.FromInt32(6380) && len(rule.To) > 0 && rule.To[0].IPBlock != nil)
		}
	}
	if !ok {
		t.Errorf("redis-clients-egress does not allow port 6380 to an ipBlock: %+v", np.Spec.Egress)
	}
}

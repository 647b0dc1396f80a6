package k8s

import (
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The custom resources are decoded as unstructured (their Go types would
// pull in the operators' modules); these check the fields the operators
// require and the references they make.

func str(t *testing.T, u *unstructured.Unstructured, fields ...string) string {
	t.Helper()
	s, ok, err := unstructured.NestedString(u.Object, fields...)
	if err != nil || !ok || s == "" {
		t.Errorf("%s %s: %s is required (err %v)", u.GetKind(), u.GetName(), strings.Join(fields, "."), err)
	}
	return s
}

func list(t *testing.T, u *unstructured.Unstructured, fields ...string) []map[string]any {
	t.Helper()
	items, ok, err := unstructured.NestedSlice(u.Object, fields...)
	if err != nil || !ok || len(items) == 0 {
		t.Errorf("%s %s: %s must be a non-empty list (err %v)", u.GetKind(), u.GetName(), strings.Join(fields, "."), err)
		return nil
	}
	var out []map[string]any
	for i, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			t.Errorf("%s %s: %s[%d] is not an object", u.GetKind(), u.GetName(), strings.Join(fields, "."), i)
			continue
		}
		out = append(out, m)
	}
	return out
}

func onlyFields(t *testing.T, u *unstructured.Unstructured, where string, m map[string]any, allowed ...string) {
	t.Helper()
	for k := range m {
		if !slices.Contains(allowed, k) {
			t.Errorf("%s %s: unknown field %s.%s", u.GetKind(), u.GetName(), where, k)
		}
	}
}

// checkMonitorTargets checks that a monitor's selector matches a Service with
// the endpoint's named port.
func checkMonitorTargets(t *testing.T, r *rendered, u *unstructured.Unstructured, endpointsField string) {
	t.Helper()
	sel, _, _ := unstructured.NestedStringMap(u.Object, "spec", "selector", "matchLabels")
	if len(sel) == 0 {
		t.Errorf("%s %s: spec.selector.matchLabels is required here", u.GetKind(), u.GetName())
	}
	if u.GetLabels()["release"] == "" {
		t.Errorf("%s %s: no release label: kube-prometheus-stack would ignore it", u.GetKind(), u.GetName())
	}
	for _, ep := range list(t, u, "spec", endpointsField) {
		onlyFields(t, u, endpointsField, ep, "port", "path", "interval", "scrapeTimeout", "relabelings", "metricRelabelings", "scheme", "honorLabels")
		port, _ := ep["port"].(string)
		if port == "" {
			t.Errorf("%s %s: endpoint without a named port", u.GetKind(), u.GetName())
		}
		if ep["path"] != "/metrics" {
			t.Errorf("%s %s: path %v, want /metrics", u.GetKind(), u.GetName(), ep["path"])
		}
		found := false
		if u.GetKind() == "ServiceMonitor" {
			for _, o := range r.find("Service") {
				svc := decode[corev1.Service](t, o)
				if matchesLabels(sel, svc.Labels) {
					for _, p := range svc.Spec.Ports {
						found = found || p.Name == port
					}
				}
			}
		} else {
			for _, p := range r.pods(t) {
				if matchesLabels(sel, p.meta.Labels) {
					for _, c := range p.spec.Containers {
						for _, cp := range c.Ports {
							found = found || cp.Name == port
						}
					}
				}
			}
		}
		if !found {
			t.Errorf("%s %s: nothing selected has a port named %q", u.GetKind(), u.GetName(), port)
		}
	}
}

func matchesLabels(sel, lbls map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if lbls[k] != v {
			return false
		}
	}
	return true
}

func spec(t *testing.T, u *unstructured.Unstructured) map[string]any {
	t.Helper()
	m, ok, err := unstructured.NestedMap(u.Object, "spec")
	if !ok || err != nil {
		t.Errorf("%s %s: spec is required (err %v)", u.GetKind(), u.GetName(), err)
	}
	return m
}

func checkServiceMonitor(t *testing.T, r *rendered, u *unstructured.Unstructured) {
	onlyFields(t, u, "spec", spec(t, u), "selector", "endpoints", "namespaceSelector", "jobLabel")
	checkMonitorTargets(t, r, u, "endpoints")
}

func checkPodMonitor(t *testing.T, r *rendered, u *unstructured.Unstructured) {
	onlyFields(t, u, "spec", spec(t, u), "selector", "podMetricsEndpoints", "namespaceSelector", "jobLabel")
	checkMonitorTargets(t, r, u, "podMetricsEndpoints")
}

func checkPrometheusRule(t *testing.T, _ *rendered, u *unstructured.Unstructured) {
	if u.GetLabels()["release"] == "" {
		t.Errorf("PrometheusRule %s: no release label: kube-prometheus-stack would ignore it", u.GetName())
	}
	for _, g := range list(t, u, "spec", "groups") {
		onlyFields(t, u, "groups[]", g, "name", "interval", "rules", "limit", "query_offset", "labels")
		if s, _ := g["name"].(string); s == "" {
			t.Errorf("PrometheusRule %s: group without a name", u.GetName())
		}
		rules, _ := g["rules"].([]any)
		if len(rules) == 0 {
			t.Errorf("PrometheusRule %s: group %v has no rules", u.GetName(), g["name"])
		}
		for _, ri := range rules {
			rule, _ := ri.(map[string]any)
			onlyFields(t, u, "rules[]", rule, "alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations")
			alert, _ := rule["alert"].(string)
			record, _ := rule["record"].(string)
			if (alert == "") == (record == "") {
				t.Errorf("PrometheusRule %s: rule %v needs exactly one of alert and record", u.GetName(), rule)
			}
			if rule["expr"] == nil || rule["expr"] == "" {
				t.Errorf("PrometheusRule %s: rule %s%s has no expr", u.GetName(), alert, record)
			}
			// Every alert links its runbook, a path from the repository root
			// (deploy/checks/compose checks what the runbooks say).
			if alert != "" {
				ann, _ := rule["annotations"].(map[string]any)
				rb, _ := ann["runbook_url"].(string)
				if _, err := os.Stat(filepath.Join(repoRoot(t), rb)); rb != "docs/runbooks/"+alert+".md" || err != nil {
					t.Errorf("PrometheusRule %s: alert %s: runbook_url %q, want docs/runbooks/%s.md, an existing file (%v)", u.GetName(), alert, rb, alert, err)
				}
			}
		}
	}
}

func checkScaledObject(t *testing.T, r *rendered, u *unstructured.Unstructured) {
	target := str(t, u, "spec", "scaleTargetRef", "name")
	r.get(t, "Deployment", target)
	min, ok, _ := unstructured.NestedInt64(u.Object, "spec", "minReplicaCount")
	if !ok || min < 1 {
		t.Errorf("ScaledObject %s: minReplicaCount = %d, want ≥ 1 (at zero no worker moves scheduled and retry tasks to pending)", u.GetName(), min)
	}
	max, _, _ := unstructured.NestedInt64(u.Object, "spec", "maxReplicaCount")
	if max < min {
		t.Errorf("ScaledObject %s: maxReplicaCount %d < minReplicaCount %d", u.GetName(), max, min)
	}
	for _, h := range r.find("HorizontalPodAutoscaler") {
		if ref := decode[autoscalingv2.HorizontalPodAutoscaler](t, h).Spec.ScaleTargetRef; ref.Kind == "Deployment" && ref.Name == target {
			t.Errorf("%s also scales %s: KEDA creates its own HPA", h, target)
		}
	}
	names := map[string]bool{}
	for _, tr := range list(t, u, "spec", "triggers") {
		onlyFields(t, u, "triggers[]", tr, "type", "name", "metadata", "authenticationRef", "metricType", "useCachedMetrics")
		name, _ := tr["name"].(string)
		if name == "" || names[name] {
			t.Errorf("ScaledObject %s: trigger name %q empty or used twice", u.GetName(), name)
		}
		names[name] = true
		md, _ := tr["metadata"].(map[string]any)
		for k, v := range md {
			if _, ok := v.(string); !ok {
				t.Errorf("ScaledObject %s: trigger %s: metadata.%s is %T; KEDA reads strings", u.GetName(), name, k, v)
			}
		}
		var required []string
		needsAuth := false
		switch tr["type"] {
		case "redis":
			required, needsAuth = []string{"address", "listName", "listLength", "databaseIndex"}, true
		case "prometheus": // components/keda-latency
			required = []string{"serverAddress", "query", "threshold"}
			if mt, ok := tr["metricType"]; ok && mt != "Value" && mt != "AverageValue" {
				t.Errorf("ScaledObject %s: trigger %s: metricType %v, want Value or AverageValue", u.GetName(), name, mt)
			}
			if th, _ := md["threshold"].(string); th != "" {
				if v, err := strconv.ParseFloat(th, 64); err != nil || v <= 0 {
					t.Errorf("ScaledObject %s: trigger %s: threshold %q is not a positive number", u.GetName(), name, th)
				}
			}
		default:
			t.Errorf("ScaledObject %s: trigger %s: type %v, want redis or prometheus", u.GetName(), name, tr["type"])
		}
		for _, k := range required {
			if s, _ := md[k].(string); s == "" {
				t.Errorf("ScaledObject %s: trigger %s: metadata.%s must be a non-empty string", u.GetName(), name, k)
			}
		}
		auth, _ := tr["authenticationRef"].(map[string]any)
		ref, _ := auth["name"].(string)
		switch {
		case ref != "":
			r.get(t, "TriggerAuthentication", ref)
		case needsAuth:
			t.Errorf("ScaledObject %s: trigger %s has no authenticationRef", u.GetName(), name)
		}
	}
}

func checkTriggerAuthentication(t *testing.T, r *rendered, u *unstructured.Unstructured) {
	for _, ref := range list(t, u, "spec", "secretTargetRef") {
		onlyFields(t, u, "secretTargetRef[]", ref, "parameter", "name", "key")
		name, _ := ref["name"].(string)
		key, _ := ref["key"].(string)
		if ref["parameter"] != "password" {
			t.Errorf("TriggerAuthentication %s: parameter %v, want password", u.GetName(), ref["parameter"])
		}
		s := r.secret(t, name)
		if len(s.Data[key]) == 0 {
			t.Errorf("TriggerAuthentication %s: Secret %s has no key %s", u.GetName(), name, key)
		}
	}
}

// redisAddr turns REDIS_URL into what a client in another namespace dials.
func redisAddr(t *testing.T, raw, namespace string) (host, port, db string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("REDIS_URL %q: %v", raw, err)
	}
	host, port = u.Hostname(), u.Port()
	if port == "" {
		port = "6379"
	}
	if !strings.Contains(host, ".") {
		host += "." + namespace + ".svc"
	}
	db = strings.TrimPrefix(u.Path, "/")
	if db == "" {
		db = "0"
	}
	return host, port, db
}

package k8s

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// typed maps every built-in kind the manifests may use to its Go type.
var typed = map[string]func() any{
	"v1/Namespace":                           func() any { return new(corev1.Namespace) },
	"v1/ServiceAccount":                      func() any { return new(corev1.ServiceAccount) },
	"v1/ConfigMap":                           func() any { return new(corev1.ConfigMap) },
	"v1/Secret":                              func() any { return new(corev1.Secret) },
	"v1/Service":                             func() any { return new(corev1.Service) },
	"apps/v1/Deployment":                     func() any { return new(appsv1.Deployment) },
	"apps/v1/StatefulSet":                    func() any { return new(appsv1.StatefulSet) },
	"policy/v1/PodDisruptionBudget":          func() any { return new(policyv1.PodDisruptionBudget) },
	"networking.k8s.io/v1/NetworkPolicy":     func() any { return new(networkingv1.NetworkPolicy) },
	"networking.k8s.io/v1/Ingress":           func() any { return new(networkingv1.Ingress) },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
}

// customResources are the CRDs the components use, each with its checks.
var customResources = map[string]func(t *testing.T, r *rendered, u *unstructured.Unstructured){
	"monitoring.coreos.com/v1/ServiceMonitor": checkServiceMonitor,
	"monitoring.coreos.com/v1/PodMonitor":     checkPodMonitor,
	"monitoring.coreos.com/v1/PrometheusRule": checkPrometheusRule,
	"keda.sh/v1alpha1/ScaledObject":           checkScaledObject,
	"keda.sh/v1alpha1/TriggerAuthentication":  checkTriggerAuthentication,
}

func gvkKey(o object) string {
	gv := o.gvk.Version
	if o.gvk.Group != "" {
		gv = o.gvk.Group + "/" + gv
	}
	return gv + "/" + o.gvk.Kind
}

// TestBuild builds every overlay with every subset of the components.
func TestBuild(t *testing.T) {
	t.Parallel()
	for _, v := range variants() {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			r := build(t, v, examples)
			if len(r.objects) == 0 {
				t.Fatal("empty build")
			}
			// Without components, nothing needs a CRD.
			for _, o := range r.objects {
				if _, cr := customResources[gvkKey(o)]; cr && len(v.components) == 0 {
					t.Errorf("%s needs a CRD but no component is on", o)
				}
			}
			// Each component adds what it is for.
			want := map[string][]string{
				"monitoring": {"ServiceMonitor", "PodMonitor", "PrometheusRule"},
				"keda":       {"ScaledObject", "TriggerAuthentication"},
			}
			for c, kinds := range want {
				for _, k := range kinds {
					if got := len(r.find(k)) > 0; got != v.has(c) {
						t.Errorf("%s present = %v, component %s on = %v", k, got, c, v.has(c))
					}
				}
			}
		})
	}
}

// TestStrictDecoding decodes every object into its k8s.io/api type,
// refusing unknown fields; custom resources are checked as unstructured.
func TestStrictDecoding(t *testing.T) {
	t.Parallel()
	for _, v := range variants() {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			r := build(t, v, examples)
			for _, o := range r.objects {
				key := gvkKey(o)
				if newObj, ok := typed[key]; ok {
					if err := decodeStrict(o.json, newObj()); err != nil {
						t.Errorf("%s: %v", o, err)
					}
					continue
				}
				check, ok := customResources[key]
				if !ok {
					t.Errorf("%s: unexpected kind %s (add it to the typed or custom resource lists)", o, key)
					continue
				}
				u := &unstructured.Unstructured{}
				if err := u.UnmarshalJSON(o.json); err != nil {
					t.Errorf("%s: %v", o, err)
					continue
				}
				check(t, r, u)
			}
		})
	}
}

// TestStrictDecodingRefusesUnknownFields proves the decoder used above is
// strict: a misspelt field is an error, not silently dropped.
func TestStrictDecodingRefusesUnknownFields(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		doc  string
		into any
	}{
		{`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"x"},"spec":{"replica":2}}`, new(appsv1.Deployment)},
		{`{"apiVersion":"v1","kind":"Service","metadata":{"name":"x"},"spec":{"ports":[{"port":80,"targetport":"http"}]}}`, new(corev1.Service)},
		{`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{},"data":{}}`, new(corev1.ConfigMap)},
	} {
		if err := decodeStrict([]byte(tc.doc), tc.into); err == nil {
			t.Errorf("decodeStrict accepted %s", tc.doc)
		}
	}
}

// TestNamespace checks that everything lands in one namespace labelled for
// the restricted Pod Security profile.
func TestNamespace(t *testing.T) {
	t.Parallel()
	for _, v := range variants() {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			r := build(t, v, examples)
			nss := r.find("Namespace")
			if len(nss) != 1 {
				t.Fatalf("want 1 Namespace, got %d", len(nss))
			}
			ns := decode[corev1.Namespace](t, nss[0])
			for _, mode := range []string{"enforce", "warn", "audit"} {
				if got := ns.Labels["pod-security.kubernetes.io/"+mode]; got != "restricted" {
					t.Errorf("namespace label pod-security.kubernetes.io/%s = %q, want restricted", mode, got)
				}
			}
			for _, o := range r.objects {
				if o.gvk.Kind != "Namespace" && o.namespace != ns.Name {
					t.Errorf("%s is not in namespace %q", o, ns.Name)
				}
				var meta struct {
					Metadata metav1.ObjectMeta `json:"metadata"`
				}
				if err := json.Unmarshal(o.json, &meta); err != nil {
					t.Fatal(err)
				}
				// `kubectl get ... -l app.kubernetes.io/part-of=taskstack` lists everything.
				if meta.Metadata.Labels["app.kubernetes.io/part-of"] != "taskstack" {
					t.Errorf("%s lacks the label app.kubernetes.io/part-of=taskstack", o)
				}
			}
		})
	}
}

// TestReferences checks what a cluster would only reveal at run time:
// selectors select something, named ports exist, referenced objects exist.
func TestReferences(t *testing.T) {
	t.Parallel()
	for _, v := range variants() {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			r := build(t, v, examples)
			pods := r.pods(t)
			selected := func(sel *metav1.LabelSelector) []podTemplate {
				s, err := metav1.LabelSelectorAsSelector(sel)
				if err != nil {
					t.Fatal(err)
				}
				var out []podTemplate
				for _, p := range pods {
					if !s.Empty() && s.Matches(labels.Set(p.meta.Labels)) {
						out = append(out, p)
					}
				}
				return out
			}
			// Workload selectors match their own template.
			for _, p := range pods {
				var sel *metav1.LabelSelector
				switch p.owner.gvk.Kind {
				case "Deployment":
					sel = decode[appsv1.Deployment](t, p.owner).Spec.Selector
				case "StatefulSet":
					s := decode[appsv1.StatefulSet](t, p.owner)
					sel = s.Spec.Selector
					if _, err := findService(r, t, s.Spec.ServiceName); err != nil {
						t.Errorf("%s: serviceName: %v", p.owner, err)
					}
				}
				if m := selected(sel); len(m) != 1 || m[0].owner.name != p.owner.name {
					t.Errorf("%s: selector matches %d templates, want only its own", p.owner, len(m))
				}
				if p.spec.ServiceAccountName != "" {
					r.get(t, "ServiceAccount", p.spec.ServiceAccountName)
				}
				for _, vol := range p.spec.Volumes {
					if vol.ConfigMap != nil {
						r.get(t, "ConfigMap", vol.ConfigMap.Name)
					}
					if vol.Secret != nil {
						r.get(t, "Secret", vol.Secret.SecretName)
					}
				}
			}
			// Services select pods that have the target port.
			for _, o := range r.find("Service") {
				svc := decode[corev1.Service](t, o)
				m := selected(&metav1.LabelSelector{MatchLabels: svc.Spec.Selector})
				if len(m) == 0 {
					t.Errorf("%s selects no pods", o)
				}
				for _, p := range m {
					for _, port := range svc.Spec.Ports {
						if _, ok := containerPort(p.spec, port.TargetPort); !ok {
							t.Errorf("%s: targetPort %s not in %s", o, port.TargetPort.String(), p.owner)
						}
					}
				}
			}
			for _, o := range r.find("PodDisruptionBudget") {
				pdb := decode[policyv1.PodDisruptionBudget](t, o)
				if len(selected(pdb.Spec.Selector)) == 0 {
					t.Errorf("%s selects no pods", o)
				}
			}
			for _, o := range r.find("NetworkPolicy") {
				np := decode[networkingv1.NetworkPolicy](t, o)
				if len(np.Spec.PodSelector.MatchLabels)+len(np.Spec.PodSelector.MatchExpressions) > 0 && len(selected(&np.Spec.PodSelector)) == 0 {
					t.Errorf("%s selects no pods", o)
				}
			}
			for _, o := range r.find("Ingress") {
				ing := decode[networkingv1.Ingress](t, o)
				for _, rule := range ing.Spec.Rules {
					for _, path := range rule.HTTP.Paths {
						svc, err := findService(r, t, path.Backend.Service.Name)
						if err != nil {
							t.Errorf("%s: %v", o, err)
							continue
						}
						if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool {
							return p.Name == path.Backend.Service.Port.Name && p.Name != "" || p.Port == path.Backend.Service.Port.Number && p.Port != 0
						}) {
							t.Errorf("%s: service %s has no port %+v", o, svc.Name, path.Backend.Service.Port)
						}
					}
				}
			}
			for _, o := range r.find("HorizontalPodAutoscaler") {
				hpa := decode[autoscalingv2.HorizontalPodAutoscaler](t, o)
				d := decode[appsv1.Deployment](t, r.get(t, hpa.Spec.ScaleTargetRef.Kind, hpa.Spec.ScaleTargetRef.Name))
				if d.Spec.Replicas != nil {
					t.Errorf("%s scales %s, which sets spec.replicas: every apply would reset the count", o, hpa.Spec.ScaleTargetRef.Name)
				}
			}
		})
	}
}

func findService(r *rendered, t *testing.T, name string) (*corev1.Service, error) {
	for _, o := range r.find("Service") {
		if o.name == name {
			return decode[corev1.Service](t, o), nil
		}
	}
	return nil, fmt.Errorf("no Service %q", name)
}

// containerPort resolves a named or numbered port in a pod.
func containerPort(spec corev1.PodSpec, port intstr.IntOrString) (int32, bool) {
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			if port.Type == intstr.String && p.Name == port.StrVal || port.Type == intstr.Int && p.ContainerPort == port.IntVal {
				return p.ContainerPort, true
			}
		}
	}
	return 0, false
}

// TestPodDisruptionBudgets: a budget must never block a node drain, even
// with a single replica.
func TestPodDisruptionBudgets(t *testing.T) {
	t.Parallel()
	for _, v := range variants() {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			r := build(t, v, examples)
			covered := map[string]bool{}
			for _, o := range r.find("PodDisruptionBudget") {
				pdb := decode[policyv1.PodDisruptionBudget](t, o)
				if pdb.Spec.MinAvailable != nil {
					t.Errorf("%s: minAvailable blocks drains at one replica; use maxUnavailable", o)
				}
				mu := pdb.Spec.MaxUnavailable
				if mu == nil || (mu.Type == intstr.Int && mu.IntVal < 1) || (mu.Type == intstr.String && mu.StrVal == "0%") {
					t.Errorf("%s: maxUnavailable = %v, want at least 1", o, mu)
				}
				covered[pdb.Spec.Selector.MatchLabels["app.kubernetes.io/name"]] = true
			}
			for _, name := range []string{"app", "worker", "monitor"} {
				if !covered[name] {
					t.Errorf("no PodDisruptionBudget for %s", name)
				}
			}
		})
	}
}

// TestNetworkPolicies checks the default deny and that every flow the
// system needs has a policy.
func TestNetworkPolicies(t *testing.T) {
	t.Parallel()
	for _, v := range variants() {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			r := build(t, v, examples)
			var nps []*networkingv1.NetworkPolicy
			for _, o := range r.find("NetworkPolicy") {
				nps = append(nps, decode[networkingv1.NetworkPolicy](t, o))
			}
			deny := slices.ContainsFunc(nps, func(np *networkingv1.NetworkPolicy) bool {
				return len(np.Spec.PodSelector.MatchLabels) == 0 && len(np.Spec.PodSelector.MatchExpressions) == 0 &&
					len(np.Spec.Ingress) == 0 && len(np.Spec.Egress) == 0 &&
					slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) &&
					slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
			})
			if !deny {
				t.Error("no default-deny policy (empty podSelector, Ingress and Egress, no rules)")
			}
			pods := map[string]map[string]string{}
			for _, p := range r.pods(t) {
				pods[p.meta.Labels["app.kubernetes.io/name"]] = p.meta.Labels
			}
			type flow struct {
				desc     string
				from, to string // pod names in the namespace, or "ns:<namespace>"
				port     int32
			}
			flows := []flow{
				{"app to Redis", "app", "redis", 6379},
				{"worker to Redis", "worker", "redis", 6379},
				{"monitor to Redis", "monitor", "redis", 6379},
				{"app to DNS", "app", "ns:kube-system", 53},
				{"worker to DNS", "worker", "ns:kube-system", 53},
				{"monitor to DNS", "monitor", "ns:kube-system", 53},
				{"worker to OTLP", "worker", "ns:monitoring", 4318},
				{"app to OTLP", "app", "ns:monitoring", 4317},
				{"monitor to Prometheus", "monitor", "ns:monitoring", 9090},
				{"Prometheus scrapes app", "ns:monitoring", "app", 9091},
				{"Prometheus scrapes worker", "ns:monitoring", "worker", 9090},
				{"Prometheus scrapes monitor", "ns:monitoring", "monitor", 8081},
			}
			if v.has("keda") {
				flows = append(flows, flow{"KEDA polls Redis", "ns:keda", "redis", 6379})
			}
			// Endpoints the processes dial (not the links the page shows)
			// must be name.namespace.svc URLs the policies let through.
			dialed := []string{"MONITOR_PROMETHEUS_URL", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"}
			for _, p := range r.pods(t) {
				for _, c := range p.spec.Containers {
					bin := binary(c)
					if bin == "" {
						continue
					}
					for name, e := range resolveEnv(t, r, p, c) {
						u, err := url.Parse(e.value)
						if !slices.Contains(dialed, name) || e.value == "" {
							continue
						}
						if err != nil || u.Host == "" {
							t.Errorf("%s: %s=%q is not a URL", p.owner, name, e.value)
							continue
						}
						parts := strings.Split(u.Hostname(), ".")
						if len(parts) < 3 || parts[2] != "svc" {
							t.Errorf("%s: %s=%s: want a name.namespace.svc address, or add a check for it", p.owner, name, e.value)
							continue
						}
						port, _ := strconv.Atoi(u.Port())
						if port == 0 {
							port = map[string]int{"http": 80, "https": 443}[u.Scheme]
						}
						flows = append(flows, flow{bin + " to " + name, bin, "ns:" + parts[1], int32(port)})
					}
				}
			}
			// The app's admin port (/metrics) is for Prometheus only.
			if allows(nps, pods["app"], networkingv1.PolicyTypeIngress, "ns:ingress-nginx", pods, 9091) {
				t.Error("the app's admin port 9091 is reachable from outside the monitoring namespace")
			}
			for _, f := range flows {
				if f.from[:3] != "ns:" && !allows(nps, pods[f.from], networkingv1.PolicyTypeEgress, f.to, pods, f.port) {
					t.Errorf("%s: no egress policy allows it", f.desc)
				}
				if f.to[:3] != "ns:" && !allows(nps, pods[f.to], networkingv1.PolicyTypeIngress, f.from, pods, f.port) {
					t.Errorf("%s: no ingress policy allows it", f.desc)
				}
			}
		})
	}
}

// allows reports whether some policy selecting pod lets traffic of
// direction dir to or from peer on port. A small evaluator for the shapes
// used here: namespace selectors by kubernetes.io/metadata.name, pod
// selectors by labels, numbered ports.
func allows(nps []*networkingv1.NetworkPolicy, pod map[string]string, dir networkingv1.PolicyType, peer string, pods map[string]map[string]string, port int32) bool {
	matches := func(sel *metav1.LabelSelector, lbls map[string]string) bool {
		s, err := metav1.LabelSelectorAsSelector(sel)
		return err == nil && s.Matches(labels.Set(lbls))
	}
	peerOK := func(peers []networkingv1.NetworkPolicyPeer) bool {
		if len(peers) == 0 {
			return true
		}
		for _, p := range peers {
			if ns, ok := strings.CutPrefix(peer, "ns:"); ok {
				if p.NamespaceSelector != nil && matches(p.NamespaceSelector, map[string]string{"kubernetes.io/metadata.name": ns}) {
					return true
				}
				continue
			}
			if p.NamespaceSelector == nil && p.PodSelector != nil && matches(p.PodSelector, pods[peer]) {
				return true
			}
		}
		return false
	}
	portOK := func(ports []networkingv1.NetworkPolicyPort) bool {
		if len(ports) == 0 {
			return true
		}
		return slices.ContainsFunc(ports, func(p networkingv1.NetworkPolicyPort) bool {
			return p.Port != nil && p.Port.Type == intstr.Int && p.Port.IntVal == port
		})
	}
	for _, np := range nps {
		if pod == nil || !matches(&np.Spec.PodSelector, pod) || !slices.Contains(np.Spec.PolicyTypes, dir) {
			continue
		}
		if dir == networkingv1.PolicyTypeIngress {
			for _, rule := range np.Spec.Ingress {
				if peerOK(rule.From) && portOK(rule.Ports) {
					return true
				}
			}
		} else {
			for _, rule := range np.Spec.Egress {
				if peerOK(rule.To) && portOK(rule.Ports) {
					return true
				}
			}
		}
	}
	return false
}

// TestKustomizationFields decodes every kustomization.yaml under deploy/k8s
// strictly into kustomize's own type and refuses deprecated fields.
func TestKustomizationFields(t *testing.T) {
	t.Parallel()
	deprecated := []string{"commonLabels", "patchesStrategicMerge", "patchesJson6902", "bases", "vars", "imageTags"}
	var files []string
	err := filepath.WalkDir(k8sDir(t), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".build" {
			return filepath.SkipDir
		}
		if d.Name() == "kustomization.yaml" || d.Name() == "kustomization.yml" || d.Name() == "Kustomization" {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("found only %d kustomization files: %v", len(files), files)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var raw map[string]any
		if err := yaml.Unmarshal(data, &raw); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		for _, key := range deprecated {
			if _, ok := raw[key]; ok {
				t.Errorf("%s: deprecated field %q", f, key)
			}
		}
		var k types.Kustomization
		if err := yaml.UnmarshalStrict(data, &k); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if k.Kind != types.KustomizationKind && k.Kind != types.ComponentKind {
			t.Errorf("%s: kind %q", f, k.Kind)
		}
	}
}

package k8s

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"taskstack/internal/config"
	"taskstack/internal/testsupport"
)

// triggers returns the ScaledObject's triggers by type.
func triggers(t *testing.T, r *rendered) map[string][]map[string]any {
	t.Helper()
	objs := r.find("ScaledObject")
	if len(objs) != 1 {
		t.Fatalf("%s: %d ScaledObjects, want 1", r.variant, len(objs))
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(objs[0].json); err != nil {
		t.Fatal(err)
	}
	list, _, _ := unstructured.NestedSlice(u.Object, "spec", "triggers")
	out := map[string][]map[string]any{}
	for _, tr := range list {
		m, _ := tr.(map[string]any)
		typ, _ := m["type"].(string)
		out[typ] = append(out[typ], m)
	}
	return out
}

// TestKEDALatencyTrigger checks components/keda-latency: it adds exactly one
// Prometheus trigger to the ScaledObject of components/keda and leaves the
// depth triggers as they were; its query is valid PromQL on the series the
// monitor exports for a queue the workers serve, in the ScaledObject's
// namespace; it asks Prometheus where components/monitoring points the
// monitor; it scales by Value (a wait is not divided among replicas).
func TestKEDALatencyTrigger(t *testing.T) {
	t.Parallel()
	for _, env := range envs {
		depth := triggers(t, build(t, variant{env: env, components: []string{"keda"}}, examples))
		for _, v := range []variant{
			{env: env, components: []string{"keda", "keda-latency"}},
			{env: env, components: []string{"monitoring", "keda", "keda-latency"}},
		} {
			r := build(t, v, examples)
			got := triggers(t, r)
			if diff := cmp.Diff(depth["redis"], got["redis"]); diff != "" {
				t.Errorf("%s: the depth triggers changed (-keda +%s):\n%s", v, v, diff)
			}
			if len(got) != 2 || len(got["prometheus"]) != 1 {
				t.Fatalf("%s: triggers by type %v, want the redis ones and one prometheus", v, got)
			}
			tr := got["prometheus"][0]
			md, _ := tr["metadata"].(map[string]any)
			query, _ := md["query"].(string)
			if tr["metricType"] != "Value" {
				t.Errorf("%s: metricType %v, want Value", v, tr["metricType"])
			}
			promQLValid(t, query)

			so := r.get(t, "ScaledObject", "worker")
			var worker podTemplate
			for _, p := range r.pods(t) {
				if p.owner.gvk.Kind == "Deployment" && p.owner.name == "worker" {
					worker = p
				}
			}
			queues, err := config.ParseQueues(resolveEnv(t, r, worker, worker.spec.Containers[0])["WORKER_QUEUES"].value)
			if err != nil {
				t.Fatalf("%s: WORKER_QUEUES: %v", v, err)
			}
			served := false
			for q := range queues {
				served = served || strings.Contains(query, fmt.Sprintf(`queue=%q`, q))
			}
			for _, want := range []string{"asynq_queue_latency_seconds{", fmt.Sprintf(`namespace=%q`, so.namespace), `job="monitor"`} {
				if !strings.Contains(query, want) {
					t.Errorf("%s: query %q lacks %s", v, query, want)
				}
			}
			if !served {
				t.Errorf("%s: query %q names no queue of WORKER_QUEUES", v, query)
			}

			if v.has("monitoring") {
				var url string
				for _, o := range r.find("ConfigMap") {
					if strings.HasPrefix(o.name, "monitor-config") {
						url = r.configMap(t, o.name).Data["MONITOR_PROMETHEUS_URL"]
					}
				}
				if md["serverAddress"] != url {
					t.Errorf("%s: serverAddress %v, but the monitor queries %q (MONITOR_PROMETHEUS_URL)", v, md["serverAddress"], url)
				}
			}
		}
	}
}

// promQLValid checks an expression with promtool, as a one-rule file.
func promQLValid(t *testing.T, expr string) {
	t.Helper()
	dir := t.TempDir()
	rule := fmt.Sprintf("groups:\n  - name: keda\n    rules:\n      - record: keda:query\n        expr: %q\n", expr)
	if err := os.WriteFile(filepath.Join(dir, "q.yml"), []byte(rule), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := testsupport.Command(t, time.Minute, testsupport.LookPath(t, "promtool"), "check", "rules", "q.yml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("query %q: promtool check rules: %v\n%s", expr, err, out)
	}
}

// TestComponentRequirements checks that a component that builds on another
// fails loudly without it, or listed before it, instead of doing nothing.
func TestComponentRequirements(t *testing.T) {
	t.Parallel()
	for c, dep := range requires {
		for _, v := range []variant{
			{env: "dev", components: []string{c}},
			{env: "prod", components: []string{"monitoring", c}},
			{env: "dev", components: []string{c, dep}},
		} {
			_, err := render(k8sDir(t), v, examples)
			if err == nil {
				t.Errorf("%s builds: %s without %s before it must fail", v, c, dep)
				continue
			}
			if !strings.Contains(err.Error(), "ScaledObject") {
				t.Errorf("%s: error %q does not say what is missing", v, err)
			}
		}
	}
}

// TestMakeRefusesComponentOrder: make says what is wrong before kustomize
// does (its message names a replacement).
func TestMakeRefusesComponentOrder(t *testing.T) {
	t.Parallel()
	root := stageForTest(t, examples)
	for _, components := range []string{"keda-latency", "keda-latency keda", "monitoring keda-latency"} {
		cmd := testsupport.Command(t, 2*time.Minute, "make", "-s", "--no-print-directory", "-f", filepath.Join(root, "k8s.mk"), "k8s-kustomization", "ENV=dev", "COMPONENTS="+components)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "keda-latency needs keda listed before it") {
			t.Errorf("make k8s-kustomization COMPONENTS=%q: %v\n%s", components, err, out)
		}
	}
}

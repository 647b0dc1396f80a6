package k8s

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// envs are the overlays; components the optional kustomize components, in
// the order they must be listed.
var (
	envs       = []string{"dev", "prod"}
	components = []string{"monitoring", "keda", "keda-latency"}
	// requires says which components build only on top of another.
	requires = map[string]string{"keda-latency": "keda"}
)

// variant is one way to apply taskstack: an overlay plus some components,
// composed the way `make k8s-apply ENV=... COMPONENTS=...` does it.
type variant struct {
	env        string
	components []string
}

func (v variant) String() string {
	if len(v.components) == 0 {
		return v.env
	}
	return v.env + "+" + strings.Join(v.components, "+")
}

func (v variant) has(component string) bool { return slices.Contains(v.components, component) }

// variants lists every overlay with every valid subset of the components
// (TestComponentRequirements checks that the others fail to build).
func variants() []variant {
	var out []variant
	for _, env := range envs {
	masks:
		for mask := 0; mask < 1<<len(components); mask++ {
			v := variant{env: env}
			for i, c := range components {
				if mask&(1<<i) != 0 {
					v.components = append(v.components, c)
				}
			}
			for _, c := range v.components {
				if dep, ok := requires[c]; ok && !v.has(dep) {
					continue masks
				}
			}
			out = append(out, v)
		}
	}
	return out
}

// secretMode says what the git-ignored secret files contain in a build.
type secretMode int

const (
	// examples: the committed *.example files, copied as a user would.
	examples secretMode = iota
	// realSecrets: the examples' keys with strong non-placeholder values.
	realSecrets
	// noSecrets: only the examples, as in a fresh clone.
	noSecrets
)

// object is one rendered Kubernetes object.
type object struct {
	gvk       schema.GroupVersionKind
	name      string
	namespace string
	json      []byte
}

func (o object) String() string { return fmt.Sprintf("%s %s/%s", o.gvk.Kind, o.namespace, o.name) }

// rendered is the output of one build.
type rendered struct {
	variant variant
	objects []object
}

// repoRoot is the taskstack repository, two levels above this module.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

func k8sDir(t testing.TB) string { return filepath.Join(repoRoot(t), "deploy", "k8s") }

var (
	buildMu    sync.Mutex
	buildCache = map[string]func() (*rendered, error){}
)

// build renders a variant once per test binary (builds are shared by the
// parallel tests that read them).
func build(t *testing.T, v variant, mode secretMode) *rendered {
	t.Helper()
	key := fmt.Sprintf("%s/%d", v, mode)
	buildMu.Lock()
	f, ok := buildCache[key]
	if !ok {
		root := k8sDir(t)
		f = sync.OnceValues(func() (*rendered, error) { return render(root, v, mode) })
		buildCache[key] = f
	}
	buildMu.Unlock()
	r, err := f()
	if err != nil {
		t.Fatalf("kustomize build %s: %v", v, err)
	}
	return r
}

// render copies deploy/k8s to a temporary directory (so that the secret
// files the overlays need can be created without touching the working
// tree, and a developer's real secrets are never read) and builds the
// variant there.
func render(srcRoot string, v variant, mode secretMode) (*rendered, error) {
	tmp, err := os.MkdirTemp("", "taskstack-k8s-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	dst := filepath.Join(tmp, "deploy", "k8s")
	if err := stage(srcRoot, dst, mode); err != nil {
		return nil, err
	}
	return buildDir(dst, v)
}

// buildDir writes the composite kustomization for the variant (if it has
// components) and builds it with krusty from disk, as `kubectl apply -k`
// would.
func buildDir(k8sRoot string, v variant) (*rendered, error) {
	dir := filepath.Join(k8sRoot, "overlays", v.env)
	if len(v.components) > 0 {
		dir = filepath.Join(k8sRoot, ".build", v.env)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), compositeKustomization(v), 0o644); err != nil {
			return nil, err
		}
	}
	return buildPath(dir, v)
}

// buildPath builds one kustomization directory.
func buildPath(dir string, v variant) (*rendered, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, err
	}
	r := &rendered{variant: v}
	for _, res := range m.Resources() {
		j, err := res.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", res.CurId(), err)
		}
		gvk := res.GetGvk()
		r.objects = append(r.objects, object{
			gvk:       schema.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
			name:      res.GetName(),
			namespace: res.GetNamespace(),
			json:      j,
		})
	}
	return r, nil
}

// compositeKustomization is what k8s.mk writes to deploy/k8s/.build/<env>
// for `make k8s-apply ENV=<env> COMPONENTS="..."`, and what the docs tell
// users to write in their own overlay.
func compositeKustomization(v variant) []byte {
	var b strings.Builder
	b.WriteString("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n")
	fmt.Fprintf(&b, "  - ../../overlays/%s\ncomponents:\n", v.env)
	for _, c := range v.components {
		fmt.Fprintf(&b, "  - ../../components/%s\n", c)
	}
	return []byte(b.String())
}

// stage copies src to dst without .build and without real secret files,
// then creates each secrets/<name> from secrets/<name>.example.
func stage(src, dst string, mode secretMode) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		inSecrets := filepath.Base(filepath.Dir(path)) == "secrets"
		switch {
		case d.IsDir() && rel == ".build":
			return filepath.SkipDir
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case inSecrets && !strings.HasSuffix(path, ".example"):
			return nil // a developer's real secret: never read
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.WriteFile(target, data, 0o644); err != nil {
			return err
		}
		if inSecrets && mode != noSecrets {
			if mode == realSecrets {
				data = strongSecrets(rel, data)
			}
			return os.WriteFile(strings.TrimSuffix(target, ".example"), data, 0o600)
		}
		return nil
	})
}

// strongSecrets replaces every value of an env file by a deterministic,
// non-placeholder 64-hex-digit value, as `openssl rand -hex 32` would give.
func strongSecrets(name string, data []byte) []byte {
	var out []string
	for line := range strings.Lines(string(data)) {
		line = strings.TrimRight(line, "\n")
		if k, _, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(strings.TrimSpace(line), "#") {
			sum := sha256.Sum256([]byte(name + "/" + k))
			line = k + "=" + hex.EncodeToString(sum[:])
		}
		out = append(out, line)
	}
	return []byte(strings.Join(out, "\n") + "\n")
}

// decodeStrict decodes JSON into a typed object, refusing unknown and
// duplicate fields and case-insensitive matches, as the API server's strict
// field validation does.
func decodeStrict(data []byte, into any) error {
	strictErrs, err := kjson.UnmarshalStrict(data, into)
	if err != nil {
		return err
	}
	if len(strictErrs) > 0 {
		return fmt.Errorf("strict decoding: %v", strictErrs)
	}
	return nil
}

// decode strictly decodes an object into T, failing the test on error.
func decode[T any](t *testing.T, o object) *T {
	t.Helper()
	v := new(T)
	if err := decodeStrict(o.json, v); err != nil {
		t.Fatalf("%s: %v", o, err)
	}
	return v
}

// find returns the objects of a kind.
func (r *rendered) find(kind string) []object {
	var out []object
	for _, o := range r.objects {
		if o.gvk.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// get returns the one object of a kind and name.
func (r *rendered) get(t *testing.T, kind, name string) object {
	t.Helper()
	for _, o := range r.find(kind) {
		if o.name == name {
			return o
		}
	}
	t.Fatalf("%s: no %s %q", r.variant, kind, name)
	return object{}
}

// configMap returns a ConfigMap by its rendered (hashed) name.
func (r *rendered) configMap(t *testing.T, name string) *corev1.ConfigMap {
	t.Helper()
	return decode[corev1.ConfigMap](t, r.get(t, "ConfigMap", name))
}

// secret returns a Secret by its rendered (hashed) name.
func (r *rendered) secret(t *testing.T, name string) *corev1.Secret {
	t.Helper()
	return decode[corev1.Secret](t, r.get(t, "Secret", name))
}

// podTemplate is a workload's pod template.
type podTemplate struct {
	owner object
	meta  metav1.ObjectMeta
	spec  corev1.PodSpec
	// replicas is the workload's spec.replicas (nil when left to an autoscaler).
	replicas *int32
}

// pods returns the pod templates of all workloads.
func (r *rendered) pods(t *testing.T) []podTemplate {
	t.Helper()
	var out []podTemplate
	for _, o := range r.objects {
		switch o.gvk.Kind {
		case "Deployment":
			d := decode[appsv1.Deployment](t, o)
			out = append(out, podTemplate{o, d.Spec.Template.ObjectMeta, d.Spec.Template.Spec, d.Spec.Replicas})
		case "StatefulSet":
			s := decode[appsv1.StatefulSet](t, o)
			out = append(out, podTemplate{o, s.Spec.Template.ObjectMeta, s.Spec.Template.Spec, s.Spec.Replicas})
		case "DaemonSet", "Job", "CronJob", "Pod", "ReplicaSet":
			t.Errorf("%s: %s is not covered by these checks; add it", r.variant, o)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no workloads", r.variant)
	}
	return out
}

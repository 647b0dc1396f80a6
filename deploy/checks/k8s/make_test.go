package k8s

import (
	"taskstack/internal/testsupport"
	"time"

	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// makeIn runs a k8s.mk target in a staged copy of deploy/k8s.
func makeIn(t *testing.T, k8sRoot string, args ...string) string {
	t.Helper()
	mk, err := exec.LookPath("make")
	if err != nil {
		t.Fatalf("make not found: %v", err)
	}
	cmd := testsupport.Command(t, 2*time.Minute, mk, append([]string{"-s", "--no-print-directory", "-f", filepath.Join(k8sRoot, "k8s.mk")}, args...)...)
	cmd.Dir = k8sRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func stageForTest(t *testing.T, mode secretMode) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "deploy", "k8s")
	if err := stage(k8sDir(t), dst, mode); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestImageTags checks that `make images` tags the images with what the
// overlays deploy, and that the rendered Deployments use those tags.
func TestImageTags(t *testing.T) {
	t.Parallel()
	mk, err := os.ReadFile(filepath.Join(k8sDir(t), "k8s.mk"))
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range envs {
		m := regexp.MustCompile(`(?m)^K8S_TAG_` + env + `\s*:?=\s*(\S+)\s*$`).FindSubmatch(mk)
		if m == nil {
			t.Fatalf("k8s.mk sets no K8S_TAG_%s", env)
		}
		tag := string(m[1])
		data, err := os.ReadFile(filepath.Join(k8sDir(t), "overlays", env, "kustomization.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var k types.Kustomization
		if err := yaml.Unmarshal(data, &k); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"taskstack/app", "taskstack/worker"} {
			found := false
			for _, img := range k.Images {
				if img.Name == name {
					found = true
					if img.NewTag != tag || img.NewName != "" || img.Digest != "" {
						t.Errorf("overlays/%s: image %s → %s:%s@%s, but `make images` tags %s:%s", env, name, img.NewName, img.NewTag, img.Digest, name, tag)
					}
				}
			}
			if !found {
				t.Errorf("overlays/%s sets no tag for %s", env, name)
			}
		}
		r := build(t, variant{env: env}, examples)
		for _, o := range r.find("Deployment") {
			for _, c := range decode[appsv1.Deployment](t, o).Spec.Template.Spec.Containers {
				if strings.HasPrefix(c.Image, "taskstack/") && !strings.HasSuffix(c.Image, ":"+tag) {
					t.Errorf("%s: %s: image %s, want tag %s", env, o, c.Image, tag)
				}
			}
		}
	}
}

// TestMakeComposite checks that `make k8s-apply COMPONENTS=...` composes
// the components exactly as these tests build them.
func TestMakeComposite(t *testing.T) {
	t.Parallel()
	root := stageForTest(t, examples)
	for _, v := range variants() {
		if len(v.components) == 0 {
			continue
		}
		makeIn(t, root, "k8s-kustomization", "ENV="+v.env, "COMPONENTS="+strings.Join(v.components, " "))
		got, err := os.ReadFile(filepath.Join(root, ".build", v.env, "kustomization.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if want := string(compositeKustomization(v)); string(got) != want {
			t.Errorf("%s: make wrote\n%s\nwant\n%s", v, got, want)
		}
	}
}

// TestMakeSecrets checks that on a fresh clone dev applies as cloned, and
// `make k8s-secrets ENV=prod` creates secrets prod accepts (random values
// and a first admin token; prod refuses the examples' placeholders).
func TestMakeSecrets(t *testing.T) {
	t.Parallel()
	app := "APP=" + testsupport.BuildBinary(t, "app")
	for _, env := range envs {
		t.Run(env, func(t *testing.T) {
			t.Parallel()
			root := stageForTest(t, noSecrets)
			_, err := buildDir(root, variant{env: env})
			switch {
			case env == "dev" && err != nil:
				t.Fatalf("dev must build as cloned, without secret files: %v", err)
			case env == "prod" && err == nil:
				t.Fatal("prod builds without its secret files")
			}
			out := makeIn(t, root, "k8s-secrets", "ENV="+env, app)
			if env == "prod" {
				tokens, err := os.ReadFile(filepath.Join(root, "overlays", env, "secrets", "tokens"))
				if err != nil || !strings.HasPrefix(string(tokens), "admin:tasks:admin:") {
					t.Errorf("make k8s-secrets wrote no admin token line: %q (%v)", tokens, err)
				}
				if !strings.Contains(out, "tsk_") || strings.Contains(string(tokens), "tsk_") {
					t.Errorf("the token must be printed once and only its hash stored:\n%s", out)
				}
			}
			r, err := buildDir(root, variant{env: env})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range r.pods(t) {
				for _, c := range p.spec.Containers {
					if bin := binary(c); bin != "" {
						if err := load(bin, resolveEnv(t, r, p, c)); err != nil {
							t.Errorf("%s: %s refuses the secrets make wrote: %v", p.owner, bin, err)
						}
					}
				}
			}
			// A second run keeps what is there.
			before, _ := os.ReadFile(filepath.Join(root, "overlays", env, "secrets", "redis.env"))
			makeIn(t, root, "k8s-secrets", "ENV="+env, app)
			after, _ := os.ReadFile(filepath.Join(root, "overlays", env, "secrets", "redis.env"))
			if string(before) != string(after) {
				t.Error("make k8s-secrets overwrote an existing secret file")
			}
		})
	}
}

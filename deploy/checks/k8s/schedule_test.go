package k8s

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"taskstack/internal/schedule"
	"taskstack/internal/tasks"
)

// mountedFile finds the ConfigMap key a container sees at path: the mount
// must be a whole ConfigMap as a directory (a subPath mount never sees a
// change, so the schedule could not reload).
func mountedFile(t *testing.T, r *rendered, p podTemplate, c corev1.Container, path string) (content string, ok bool) {
	t.Helper()
	for _, m := range c.VolumeMounts {
		rel, under := strings.CutPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !under {
			continue
		}
		if m.SubPath != "" {
			t.Errorf("%s: %s is mounted with subPath, which never sees a ConfigMap change", p.owner, m.MountPath)
		}
		if !m.ReadOnly {
			t.Errorf("%s: %s is not mounted read-only", p.owner, m.MountPath)
		}
		for _, v := range p.spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil {
				data, ok := r.configMap(t, v.ConfigMap.Name).Data[rel]
				return data, ok
			}
		}
	}
	return "", false
}

// hostFiles writes the files the env's paths name (from the container's
// ConfigMap mounts) to a temporary directory and points env there, so that
// a binary a test starts reads what the pod would.
func hostFiles(t *testing.T, r *rendered, p podTemplate, c corev1.Container, env map[string]string, vars ...string) {
	t.Helper()
	dir := t.TempDir()
	for _, name := range vars {
		content, ok := mountedFile(t, r, p, c, env[name])
		if !ok {
			t.Errorf("%s: %s=%s is in no mounted ConfigMap", p.owner, name, env[name])
			continue
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		env[name] = path
	}
}

// TestScheduleMounted: in every variant the worker's SCHEDULE_FILE is a key
// of a ConfigMap mounted read-only as a directory, and the schedule it holds
// is valid.
func TestScheduleMounted(t *testing.T) {
	t.Parallel()
	for _, v := range variants() {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			r := build(t, v, examples)
			workers := 0
			for _, p := range r.pods(t) {
				for _, c := range p.spec.Containers {
					if binary(c) != "worker" {
						continue
					}
					workers++
					env := map[string]string{}
					for k, ev := range resolveEnv(t, r, p, c) {
						env[k] = ev.value
					}
					hostFiles(t, r, p, c, env, "SCHEDULE_FILE")
					s, err := schedule.Load(env["SCHEDULE_FILE"], tasks.NewCatalogue())
					if err != nil {
						t.Fatalf("%s: %v", p.owner, err)
					}
					if len(s.Entries) == 0 {
						t.Errorf("%s: the shipped schedule is empty: it should show an example", p.owner)
					}
				}
			}
			if workers == 0 {
				t.Fatal("no worker container")
			}
		})
	}
}

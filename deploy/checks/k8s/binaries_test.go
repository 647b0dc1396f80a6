package k8s

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"taskstack/internal/testsupport"
)

// TestBinariesServeProbes starts the real binaries with the environment
// prod renders for them (against a real redis-server with the rendered
// password) and requests every probe path, and /metrics, on the listener
// of the address variable. TestProbes proves the probes use that
// variable's port; this proves the binary answers there.
func TestBinariesServeProbes(t *testing.T) {
	t.Parallel()
	r := build(t, variant{env: "prod", components: []string{"monitoring"}}, realSecrets)
	var password string
	for _, p := range r.pods(t) {
		for _, c := range p.spec.Containers {
			if binary(c) == "worker" {
				password = resolveEnv(t, r, p, c)["REDIS_PASSWORD"].value
			}
		}
	}
	redis := testsupport.StartRedis(t, testsupport.RedisPassword(password))

	for _, p := range r.pods(t) {
		for _, c := range p.spec.Containers {
			bin := binary(c)
			if bin == "" {
				continue
			}
			t.Run(bin, func(t *testing.T) {
				t.Parallel()
				env := map[string]string{}
				for k, v := range resolveEnv(t, r, p, c) {
					env[k] = v.value
				}
				// The cluster's addresses do not exist here: the test's
				// Redis, and free loopback ports for the listeners.
				env["REDIS_URL"] = redis.URL
				if bin == "worker" {
					hostFiles(t, r, p, c, env, "SCHEDULE_FILE")
				}
				addr := fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t))
				env[served[bin].addrVar] = addr
				metricsBase := "http://" + addr
				if v := served[bin].metricsVar; v != "" {
					maddr := fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t))
					env[v], metricsBase = maddr, "http://"+maddr
				}
				mountSecretFiles(t, r, p, c, env)
				proc := testsupport.StartProcess(t, testsupport.BuildBinary(t, bin), env)
				base := "http://" + addr
				testsupport.WaitHTTP(t, proc, base+"/healthz", 60*time.Second)
				testsupport.WaitHTTP(t, proc, metricsBase+"/metrics", 10*time.Second)
				var paths []string
				for _, pr := range []*corev1.Probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
					paths = append(paths, pr.HTTPGet.Path)
				}
				for _, path := range paths {
					testsupport.Eventually(t, 10*time.Second, bin+" "+path+" answers 200", func() bool {
						resp, err := testsupport.HTTPClient().Get(base + path)
						if err != nil {
							return false
						}
						resp.Body.Close()
						return resp.StatusCode == http.StatusOK
					})
				}
			})
		}
	}
}

// mountSecretFiles writes the files of the container's Secret volumes into
// a temporary directory, as the kubelet would mount them, and points every
// variable naming a path under a mount at the copy.
func mountSecretFiles(t *testing.T, r *rendered, p podTemplate, c corev1.Container, env map[string]string) {
	t.Helper()
	secretOf := map[string]string{}
	for _, v := range p.spec.Volumes {
		if v.Secret != nil {
			secretOf[v.Name] = v.Secret.SecretName
		}
	}
	for _, m := range c.VolumeMounts {
		name, ok := secretOf[m.Name]
		if !ok {
			continue
		}
		dir := filepath.Join(t.TempDir(), m.MountPath)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for k, v := range r.secret(t, name).Data {
			if err := os.WriteFile(filepath.Join(dir, k), v, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		for k, v := range env {
			if rest, ok := strings.CutPrefix(v, m.MountPath+"/"); ok {
				env[k] = filepath.Join(dir, rest)
			}
		}
	}
}

package k8s

import (
	"fmt"
	"net/http"
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
				// Redis, and a free loopback port for the listener.
				env["REDIS_URL"] = redis.URL
				if bin == "worker" {
					hostFiles(t, r, p, c, env, "SCHEDULE_FILE")
				}
				addr := fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t))
				env[served[bin].addrVar] = addr
				proc := testsupport.StartProcess(t, testsupport.BuildBinary(t, bin), env)
				base := "http://" + addr
				testsupport.WaitHTTP(t, proc, base+"/healthz", 60*time.Second)
				paths := []string{"/metrics"}
				for _, pr := range []*corev1.Probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
					paths = append(paths, pr.HTTPGet.Path)
				}
				for _, path := range paths {
					testsupport.Eventually(t, 10*time.Second, bin+" "+path+" answers 200", func() bool {
						resp, err := http.Get(base + path)
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

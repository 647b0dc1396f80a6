package k8s

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"taskstack/internal/testsupport"
)

// TestRedisStatefulSet runs the Redis container's own command with its
// rendered configuration on a real redis-server: the password arrives on
// stdin (never in argv), the queue settings hold, and a client without
// the password is refused.
func TestRedisStatefulSet(t *testing.T) {
	t.Parallel()
	server, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found (apt-get install -y redis-server): %v", err)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli not found: %v", err)
	}
	r := build(t, variant{env: "prod"}, realSecrets)
	sts := decode[appsv1.StatefulSet](t, r.get(t, "StatefulSet", "redis"))
	c := sts.Spec.Template.Spec.Containers[0]
	if len(sts.Spec.VolumeClaimTemplates) == 0 {
		t.Error("Redis has no PersistentVolumeClaim template")
	}
	var confMap string
	for _, v := range sts.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil {
			confMap = v.ConfigMap.Name
		}
	}
	conf := r.configMap(t, confMap).Data["redis.conf"]
	env := resolveEnv(t, r, podTemplate{owner: r.get(t, "StatefulSet", "redis")}, c)
	password := env["REDIS_PASSWORD"].value
	if !env["REDIS_PASSWORD"].fromSecret() || password == "" {
		t.Fatalf("REDIS_PASSWORD comes from %q", env["REDIS_PASSWORD"].source)
	}
	for _, arg := range append(append([]string{}, c.Command...), c.Args...) {
		if strings.Contains(arg, password) {
			t.Fatal("the Redis password is in the container's command line")
		}
	}
	if len(c.Command) != 3 || c.Command[0] != "sh" || c.Command[1] != "-c" {
		t.Fatalf("command %q: expected sh -c <script>", c.Command)
	}

	// The rendered config, moved to a free port and a temporary directory.
	dir := t.TempDir()
	port := freePort(t)
	conf = strings.Replace(conf, "\nport 6379\n", fmt.Sprintf("\nport %d\n", port), 1)
	conf = strings.Replace(conf, "\ndir /data\n", fmt.Sprintf("\ndir %s\n", dir), 1)
	confPath := filepath.Join(dir, "redis.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var mount string
	for _, m := range c.VolumeMounts {
		if m.Name == "config" {
			mount = m.MountPath
		}
	}
	script := strings.ReplaceAll(c.Command[2], filepath.Join(mount, "redis.conf"), confPath)
	script = strings.ReplaceAll(script, "redis-server", server)

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "sh", "-c", script)
	cmd.Env = []string{"REDIS_PASSWORD=" + password, "PATH=" + os.Getenv("PATH")}
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	// redis-server, started by the script, must not hold Wait (and the
	// cleanup) by keeping the output pipe open after the kill.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})

	redisCLI := func(auth bool, args ...string) (string, error) {
		c := testsupport.Command(t, 10*time.Second, cli, append([]string{"-p", fmt.Sprint(port), "--no-auth-warning"}, args...)...)
		if auth {
			c.Env = []string{"REDISCLI_AUTH=" + password}
		}
		out, err := c.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if out, _ := redisCLI(true, "ping"); out == "PONG" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not answer PONG with the password; its log:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, _ := redisCLI(false, "ping"); !strings.Contains(out, "NOAUTH") {
		t.Errorf("without the password: %q, want NOAUTH", out)
	}
	for k, want := range map[string]string{
		"appendonly":       "yes",
		"appendfsync":      "everysec",
		"maxmemory-policy": "noeviction",
	} {
		out, err := redisCLI(true, "config", "get", k)
		if err != nil || !strings.HasSuffix(out, "\n"+want) {
			t.Errorf("config get %s = %q (%v), want %s", k, out, err, want)
		}
	}
	// maxmemory leaves room below the container's memory limit.
	out, _ := redisCLI(true, "config", "get", "maxmemory")
	var maxmem int64
	fmt.Sscan(strings.TrimPrefix(out, "maxmemory\n"), &maxmem)
	limit := c.Resources.Limits.Memory().Value()
	if maxmem <= 0 || maxmem > limit*80/100 {
		t.Errorf("maxmemory %d, want set and at most 80%% of the %d-byte memory limit", maxmem, limit)
	}
	// PID 1 in the container would be redis-server itself (exec), and its
	// argv has no password.
	pid := cmd.Process.Pid
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cmdline), "redis-server") {
		t.Errorf("the shell did not exec redis-server: pid %d is %q", pid, cmdline)
	}
	if strings.Contains(string(cmdline), password) {
		t.Error("the password is in redis-server's argv")
	}
	checkProbeAuth(t, c)
}

// checkProbeAuth: the probes' redis-cli reads REDISCLI_AUTH from the
// container's environment, from the same Secret.
func checkProbeAuth(t *testing.T, c corev1.Container) {
	t.Helper()
	ok := false
	for _, e := range c.Env {
		ok = ok || (e.Name == "REDISCLI_AUTH" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil)
	}
	if !ok {
		t.Error("REDISCLI_AUTH for the readiness probe must come from the Secret")
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.Exec == nil || !strings.Contains(strings.Join(c.ReadinessProbe.Exec.Command, " "), "PONG") {
		t.Error("the readiness probe should check redis-cli ping answers PONG")
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

package compose

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"taskstack/internal/testsupport"
)

// TestRedisEntrypoint runs compose's Redis start script, with only its
// container paths made local, against the real redis-server: the generated
// configuration loads, persistence and eviction are what a queue needs, the
// password is enforced, and it is not in redis-server's argv.
func TestRedisEntrypoint(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.mustLoad(t, "prod")
	svc := p.Services["redis"]
	cmd := []string(svc.Command)
	if len(cmd) != 3 || cmd[0] != "/bin/sh" || cmd[1] != "-c" {
		t.Fatalf("redis command %q, want /bin/sh -c <script>", cmd)
	}
	env := envOf(t, svc)

	dir := t.TempDir()
	port := testsupport.FreePort(t)
	script := cmd[2]
	for _, r := range []struct{ old, new string }{
		{"/tmp/redis.conf", filepath.Join(dir, "redis.conf")},
		{"/usr/local/etc/redis/redis.conf", filepath.Join(b.composeDir, "redis", "redis.conf")},
		{"chown redis:redis", ": chown"},
		{"exec docker-entrypoint.sh redis-server " + filepath.Join(dir, "redis.conf"),
			fmt.Sprintf("exec %s %s --port %d --bind 127.0.0.1 --dir %s", testsupport.LookPath(t, "redis-server"), filepath.Join(dir, "redis.conf"), port, dir)},
	} {
		if !strings.Contains(script, r.old) {
			t.Fatalf("redis script does not contain %q:\n%s", r.old, script)
		}
		script = strings.ReplaceAll(script, r.old, r.new)
	}
	sh := testsupport.Command(t, 2*time.Minute, "/bin/sh", "-c", script)
	sh.Env = []string{"PATH=" + os.Getenv("PATH"), "REDISCLI_AUTH=" + env["REDISCLI_AUTH"], "REDIS_MAXMEMORY=" + env["REDIS_MAXMEMORY"]}
	var out strings.Builder
	sh.Stdout, sh.Stderr = &out, &out
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sh.Process.Kill(); _ = sh.Wait() })

	ctx := context.Background()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c := redis.NewClient(&redis.Options{Addr: addr, Password: prodSecrets["REDIS_PASSWORD"], MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(ctx).Err() != nil {
		if time.Now().After(deadline) {
			_ = sh.Process.Kill()
			_ = sh.Wait() // output is complete only after Wait
			t.Fatalf("redis-server started by the compose script does not answer:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// exec keeps the pid: this is redis-server's own command line.
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", sh.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cmdline), "redis-server") {
		t.Fatalf("pid %d is not redis-server: %q\n%s", sh.Process.Pid, cmdline, out.String())
	}
	if strings.Contains(string(cmdline), prodSecrets["REDIS_PASSWORD"]) {
		t.Errorf("the Redis password is in redis-server's argv: %q", cmdline)
	}

	for key, want := range map[string]string{
		"appendonly":       "yes",
		"appendfsync":      "everysec",
		"maxmemory-policy": "noeviction",
		"maxmemory":        "1073741824", // REDIS_MAXMEMORY=1gb in .env.prod
		"protected-mode":   "yes",
	} {
		got, err := c.ConfigGet(ctx, key).Result()
		if err != nil {
			t.Fatalf("CONFIG GET %s: %v", key, err)
		}
		if got[key] != want {
			t.Errorf("%s = %q, want %q", key, got[key], want)
		}
	}

	anon := redis.NewClient(&redis.Options{Addr: addr})
	defer anon.Close()
	if err := anon.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("PING without the password: %v, want NOAUTH", err)
	}
	// The generated file holds the secret: only its owner may read it.
	fi, err := os.Stat(filepath.Join(dir, "redis.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("generated redis.conf mode %v, want 0600", fi.Mode().Perm())
	}
}

package compose

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"taskstack/internal/testsupport"
)

// TestMakeTargets dry-runs `make up/down/logs ENV=...` through the root
// Makefile and checks the docker compose command lines they would run.
func TestMakeTargets(t *testing.T) {
	t.Parallel()
	b := setup(t)
	mk := testsupport.LookPath(t, "make")
	secrets := filepath.Join(t.TempDir(), "prod.env")
	if err := os.WriteFile(secrets, []byte("REDIS_PASSWORD=x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		cmd := testsupport.Command(t, time.Minute, mk, append([]string{"-n", "-C", b.root}, args...)...)
		cmd.Env = append(os.Environ(), "ENV=") // a shell's own ENV must not leak in
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	compose := "docker compose --env-file " + b.envFile("%s")
	file := "-f " + b.composeFile
	tests := []struct {
		args []string
		want []string
		not  []string
	}{
		{[]string{"up", "ENV=dev"}, []string{strings.Replace(compose, "%s", "dev", 1), file, "up -d --build --wait"}, []string{"secrets"}},
		{[]string{"up", "ENV=prod", "COMPOSE_SECRETS_FILE=" + secrets}, []string{strings.Replace(compose, "%s", "prod", 1), "--env-file " + secrets, file, "up -d --build --wait"}, nil},
		{[]string{"down", "ENV=prod"}, []string{strings.Replace(compose, "%s", "prod", 1), "down"}, nil},
		{[]string{"logs", "ENV=dev", "SERVICE=worker"}, []string{"logs -f --tail=200 worker"}, nil},
	}
	for _, tt := range tests {
		out, err := run(tt.args...)
		if err != nil {
			t.Errorf("make %v: %v\n%s", tt.args, err, out)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("make %v does not run %q:\n%s", tt.args, w, out)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(out, n) {
				t.Errorf("make %v mentions %q:\n%s", tt.args, n, out)
			}
		}
	}
	// -n still runs the guard, which refuses an unknown environment.
	cmd := testsupport.Command(t, time.Minute, mk, "-C", b.root, "up", "ENV=staging")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "ENV must be dev or prod") {
		t.Errorf("make up ENV=staging: %v\n%s", err, out)
	}
}

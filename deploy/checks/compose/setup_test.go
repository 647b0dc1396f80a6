package compose

import (
	"context"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"taskstack/internal/testsupport"
)

// envs are the environments compose runs in, each with its env file.
var envs = []string{"dev", "prod"}

// prodSecrets stand for what an operator exports (or puts in the
// git-ignored deploy/compose/secrets/prod.env): real-looking, so the
// binaries' placeholder checks accept them.
var prodSecrets = map[string]string{
	"REDIS_PASSWORD":         "q8Vd2LmX7rTz4Kw9NbHc",
	"MONITOR_PASSWORD":       "Wm3xR9tLq2VzK7pB",
	"GRAFANA_ADMIN_PASSWORD": "Hy6nC2wQ8sTd4FgJ",
	"APP_SESSION_KEY":        "Pd5kV8nR2wXc7LmT",
}

// bundle is what most tests need: where things are.
type bundle struct {
	root        string // repository root
	composeDir  string
	composeFile string
}

func setup(t *testing.T) bundle {
	t.Helper()
	root := testsupport.RepoRoot(t)
	dir := filepath.Join(root, "deploy", "compose")
	return bundle{root: root, composeDir: dir, composeFile: filepath.Join(dir, "compose.yml")}
}

func (b bundle) envFile(env string) string { return filepath.Join(b.root, ".env."+env) }

// secretsFor returns the shell environment a user supplies for env: nothing
// in dev (the env file has dev-only values), the secrets in prod.
func secretsFor(env string) map[string]string {
	if env == "prod" {
		return prodSecrets
	}
	return nil
}

// load loads the compose file the way `docker compose --env-file
// .env.<env> -f deploy/compose/compose.yml` does: osEnv plays the shell
// environment (it wins over the env file), COMPOSE_PROFILES and
// COMPOSE_PROJECT_NAME come from the env file. The test process's own
// environment is deliberately not passed.
func (b bundle) load(t *testing.T, env string, osEnv map[string]string) (*types.Project, error) {
	t.Helper()
	var list []string
	for k, v := range osEnv {
		list = append(list, k+"="+v)
	}
	sort.Strings(list)
	opts, err := cli.NewProjectOptions([]string{b.composeFile},
		cli.WithEnv(list),
		cli.WithEnvFiles(b.envFile(env)),
		cli.WithDotEnv,
		cli.WithDefaultProfiles(),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
}

// mustLoad loads env with its secrets and fails the test on error.
func (b bundle) mustLoad(t *testing.T, env string) *types.Project {
	t.Helper()
	p, err := b.load(t, env, secretsFor(env))
	if err != nil {
		t.Fatalf("load compose with .env.%s: %v", env, err)
	}
	return p
}

// envOf returns a service's resolved environment as a plain map.
func envOf(t *testing.T, s types.ServiceConfig) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range s.Environment {
		if v == nil {
			t.Errorf("service %s: %s has no value (would be taken from the host environment)", s.Name, k)
			continue
		}
		out[k] = *v
	}
	return out
}

// onHost rewrites the values of env that name a path inside one of s's bind
// mounts to that path on the host, so that a binary a test starts finds the
// file the container would. It fails on a path under no mount.
func onHost(t *testing.T, s types.ServiceConfig, env map[string]string, vars ...string) map[string]string {
	t.Helper()
	for _, name := range vars {
		v := env[name]
		found := false
		for _, m := range s.Volumes {
			if m.Type != types.VolumeTypeBind {
				continue
			}
			if rel, ok := strings.CutPrefix(v, strings.TrimSuffix(m.Target, "/")+"/"); ok {
				env[name] = filepath.Join(m.Source, rel)
				found = true
			}
		}
		if !found {
			t.Errorf("service %s: %s=%s is under none of its bind mounts", s.Name, name, v)
		}
	}
	return env
}

package compose

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

const runtimeImage = "gcr.io/distroless/static-debian13:nonroot"

func parseDockerfile(t *testing.T, path string) []instructions.Stage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	for _, w := range res.Warnings {
		t.Errorf("%s: parser warning: %s", path, w.Short)
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatalf("instructions of %s: %v", path, err)
	}
	return stages
}

func TestDockerfiles(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		file     string
		bins     []string // built and copied, the first is the entrypoint
		notBuilt []string
	}{
		{"Dockerfile.app", []string{"app", "monitor"}, []string{"worker"}},
		{"Dockerfile.worker", []string{"worker"}, []string{"app", "monitor"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			stages := parseDockerfile(t, filepath.Join(b.root, tt.file))
			if len(stages) < 2 {
				t.Fatalf("%d stages, want a build stage and a runtime stage", len(stages))
			}
			build, final := stages[0], stages[len(stages)-1]
			checkBuildStage(t, build, tt.bins, tt.notBuilt)
			checkFinalStage(t, final, build.Name, tt.bins)
		})
	}
}

func checkBuildStage(t *testing.T, s instructions.Stage, bins, notBuilt []string) {
	t.Helper()
	if !strings.HasPrefix(s.BaseName, "golang:1.26") {
		t.Errorf("build stage FROM %s, want golang:1.26", s.BaseName)
	}
	var goBuild []string
	cacheMounts := map[string]bool{}
	for _, c := range s.Commands {
		run, ok := c.(*instructions.RunCommand)
		if !ok {
			continue
		}
		// Mount flags are only parsed when expanded; keep words as written.
		if err := run.Expand(func(w string) (string, error) { return w, nil }); err != nil {
			t.Fatalf("RUN %v: %v", run.CmdLine, err)
		}
		for _, m := range instructions.GetMounts(run) {
			if m.Type == instructions.MountTypeCache {
				cacheMounts[m.Target] = true
			}
		}
		line := strings.Join(run.CmdLine, " ")
		if strings.Contains(line, "go build") {
			// One RUN may hold several builds joined by &&.
			for part := range strings.SplitSeq(line, "&&") {
				if strings.Contains(part, "go build") {
					goBuild = append(goBuild, part)
				}
			}
		}
	}
	for _, target := range []string{"/go/pkg/mod", "/root/.cache/go-build"} {
		if !cacheMounts[target] {
			t.Errorf("no BuildKit cache mount on %s", target)
		}
	}
	if len(goBuild) != len(bins) {
		t.Errorf("%d go build commands, want %d (%v)", len(goBuild), len(bins), bins)
	}
	for _, bin := range bins {
		i := slices.IndexFunc(goBuild, func(l string) bool { return strings.Contains(l, "./cmd/"+bin) })
		if i < 0 {
			t.Errorf("./cmd/%s is not built", bin)
			continue
		}
		l := goBuild[i]
		for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w `, "-X main.version=${VERSION}", "-X main.commit=${COMMIT}", "-o /out/" + bin + " "} {
			if !strings.Contains(l, want) {
				t.Errorf("go build of %s lacks %q:\n%s", bin, want, l)
			}
		}
	}
	for _, bin := range notBuilt {
		if slices.ContainsFunc(goBuild, func(l string) bool { return strings.Contains(l, "./cmd/"+bin) }) {
			t.Errorf("./cmd/%s is built into this image", bin)
		}
	}
}

func checkFinalStage(t *testing.T, s instructions.Stage, buildStage string, bins []string) {
	t.Helper()
	if s.BaseName != runtimeImage {
		t.Errorf("final stage FROM %s, want %s", s.BaseName, runtimeImage)
	}
	var (
		user       string
		entrypoint *instructions.EntrypointCommand
		health     *instructions.HealthCheckCommand
		copied     []string
		labels     = map[string]string{}
	)
	for _, c := range s.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.EntrypointCommand:
			entrypoint = c
		case *instructions.HealthCheckCommand:
			health = c
		case *instructions.CmdCommand:
			if c.PrependShell {
				t.Errorf("shell-form CMD %v: there is no shell", c.CmdLine)
			}
		case *instructions.RunCommand:
			t.Errorf("RUN in the runtime stage: there is no shell (%v)", c.CmdLine)
		case *instructions.CopyCommand:
			if c.From != buildStage {
				t.Errorf("COPY %v from %q, want from the %s stage", c.SourcePaths, c.From, buildStage)
			}
			copied = append(copied, c.DestPath)
		case *instructions.LabelCommand:
			for _, kv := range c.Labels {
				labels[kv.Key] = kv.Value
			}
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u != "65532" {
		t.Errorf("USER %q, want numeric 65532 (distroless nonroot)", user)
	}
	for _, bin := range bins {
		if !slices.Contains(copied, "/"+bin) {
			t.Errorf("/%s not copied into the runtime stage (copied %v)", bin, copied)
		}
	}
	if entrypoint == nil || entrypoint.PrependShell || !slices.Equal(entrypoint.CmdLine, []string{"/" + bins[0]}) {
		t.Errorf("ENTRYPOINT %+v, want exec form [\"/%s\"]", entrypoint, bins[0])
	}
	if health == nil || health.Health == nil {
		t.Fatal("no HEALTHCHECK")
	}
	if want := []string{"CMD", "/" + bins[0], "healthcheck"}; !slices.Equal(health.Health.Test, want) {
		t.Errorf("HEALTHCHECK test %v, want exec form %v", health.Health.Test, want)
	}
	if health.Health.Interval == 0 || health.Health.Timeout == 0 {
		t.Errorf("HEALTHCHECK without interval or timeout: %+v", health.Health)
	}
	for _, l := range []string{"org.opencontainers.image.source", "org.opencontainers.image.version", "org.opencontainers.image.revision", "org.opencontainers.image.title"} {
		if labels[l] == "" {
			t.Errorf("OCI label %s missing", l)
		}
	}
}

// TestDockerIgnore: the build context holds the sources and nothing else.
func TestDockerIgnore(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f, err := os.Open(filepath.Join(b.root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	for path, wantExcluded := range map[string]bool{
		".git/config":                        true,
		".env.dev":                           true,
		".env.prod":                          true,
		".env.prod.local":                    true,
		"deploy/compose/compose.yml":         true,
		"deploy/compose/secrets/prod.env":    true,
		"deploy/k8s/base/kustomization.yaml": true,
		"bin/app":                            true,
		"dist/taskstack.tar.gz":              true,
		"coverage.out":                       true,
		"grafana/dashboards/queues.json":     true,
		"internal/web/web_test.go":           true,
		"go.mod":                             false,
		"go.sum":                             false,
		"cmd/app/main.go":                    false,
		"cmd/worker/main.go":                 false,
		"internal/config/config.go":          false,
		"internal/web/templates/index.html":  false,
		"docs/openapi.yaml":                  false,
		"docs/openapi.go":                    false,
		"docs/security.md":                   true,
		"docs/openapi_test.go":               true,
	} {
		excluded, err := pm.MatchesOrParentMatches(path)
		if err != nil {
			t.Fatal(err)
		}
		if excluded != wantExcluded {
			t.Errorf("%s: excluded from the build context = %v, want %v", path, excluded, wantExcluded)
		}
	}
}

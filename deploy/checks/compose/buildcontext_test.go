package compose

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"taskstack/internal/testsupport"
)

// buildContext copies what docker would send as build context (the
// repository minus .dockerignore) into a temporary directory.
func buildContext(t *testing.T, root string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	patterns, err := ignorefile.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if excluded, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel)); err != nil || excluded {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestDockerfileBuildRuns runs each Dockerfile's go build RUN line, as
// written, in a copy of the build context (so a file the build needs but
// .dockerignore drops fails here), and checks the binaries are static,
// trimmed, stripped of cgo and stamped with the version and commit.
func TestDockerfileBuildRuns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctxDir := buildContext(t, b.root)
	for file, bins := range map[string][]string{
		"Dockerfile.app":    {"app", "monitor"},
		"Dockerfile.worker": {"worker"},
	} {
		t.Run(file, func(t *testing.T) {
			stages := parseDockerfile(t, filepath.Join(b.root, file))
			var script string
			for _, c := range stages[0].Commands {
				if run, ok := c.(*instructions.RunCommand); ok && strings.Contains(strings.Join(run.CmdLine, " "), "go build") {
					script = strings.Join(run.CmdLine, " ")
				}
			}
			if script == "" {
				t.Fatal("no go build RUN in the build stage")
			}
			out := t.TempDir()
			script = strings.ReplaceAll(script, "/out/", out+"/")
			cmd := testsupport.Command(t, 5*time.Minute, "/bin/sh", "-c", script) // go build, on a loaded machine
			cmd.Dir = ctxDir
			cmd.Env = append(os.Environ(),
				"TARGETOS=linux", "TARGETARCH=amd64", // build args BuildKit sets
				"VERSION=9.8.7-test", "COMMIT=0123abcd",
				"GOFLAGS=-mod=readonly", "GOWORK=off",
			)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s in the build context: %v\n%s", script, err, b)
			}
			for _, bin := range bins {
				path := filepath.Join(out, bin)
				ef, err := elf.Open(path)
				if err != nil {
					t.Fatalf("%s: %v", bin, err)
				}
				for _, p := range ef.Progs {
					if p.Type == elf.PT_INTERP {
						t.Errorf("%s is dynamically linked: distroless static has no libc", bin)
					}
				}
				if ef.Section(".symtab") != nil {
					t.Errorf("%s keeps its symbol table (-s missing)", bin)
				}
				ef.Close()
				info, err := buildinfo.ReadFile(path)
				if err != nil {
					t.Fatalf("%s: %v", bin, err)
				}
				settings := map[string]string{}
				for _, s := range info.Settings {
					settings[s.Key] = s.Value
				}
				if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
					t.Errorf("%s: CGO_ENABLED=%q -trimpath=%q", bin, settings["CGO_ENABLED"], settings["-trimpath"])
				}
				// -trimpath keeps -ldflags out of the build info; the stamped
				// strings are in the binary's data.
				raw, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				for _, want := range []string{"9.8.7-test", "0123abcd"} {
					if !bytes.Contains(raw, []byte(want)) {
						t.Errorf("%s: %q (-X main.version / main.commit) not stamped", bin, want)
					}
				}
			}
		})
	}
}

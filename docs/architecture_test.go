// Package docs_test keeps docs/architecture.md true: its package graph is
// generated from `go list`, every package has its section, and the import
// rules the document states are enforced here.
package docs_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"taskstack/internal/testsupport"
)

var update = flag.Bool("update", false, "rewrite the package graph in docs/architecture.md")

const (
	module     = "taskstack/"
	graphStart = "<!-- graph:start (generated: go test ./docs -run TestArchitecture -update) -->"
	graphEnd   = "<!-- graph:end -->"
)

// allowed is every package's permitted imports of our own packages (the
// rules docs/architecture.md states). A package missing here fails the
// test: a new room needs a decision about its doors.
var allowed = map[string][]string{
	"internal/config":      {},
	"internal/tasks":       {},
	"internal/telemetry":   {},
	"internal/redisconn":   {},
	"internal/guard":       {},
	"internal/audit":       {},
	"internal/webhook":     {},
	"internal/testsupport": {},
	"docs":                 {},
	"internal/store":       {"internal/tasks"},
	"internal/process":     {"internal/telemetry"},
	"internal/web":         {"internal/store", "internal/tasks", "internal/telemetry", "internal/guard", "internal/audit", "docs"},
	"internal/worker":      {"internal/store", "internal/tasks", "internal/telemetry"},
	"internal/monitor":     {"internal/store", "internal/tasks", "internal/redisconn", "internal/telemetry", "internal/guard", "internal/audit"},
	"internal/schedule":    {"internal/store", "internal/tasks", "internal/audit"},
	"internal/canary":      {"internal/store", "internal/tasks"},
	"internal/stack": {"internal/config", "internal/tasks", "internal/telemetry", "internal/redisconn", "internal/guard",
		"internal/store", "internal/process", "internal/web", "internal/worker", "internal/monitor", "internal/schedule", "internal/webhook",
		"internal/canary", "internal/audit"},
	"cmd/app":      {"internal/process", "internal/stack"},
	"cmd/worker":   {"internal/process", "internal/stack"},
	"cmd/monitor":  {"internal/process", "internal/stack"},
	"cmd/devstack": {"internal/process", "internal/stack"},
}

// forbidden third-party imports: web talks to Redis only through the store;
// the catalogue knows no HTTP and no Redis.
var forbidden = map[string][]string{
	"internal/web":    {"github.com/redis/go-redis/v9", "github.com/hibiken/asynq"},
	"internal/tasks":  {"net/http", "github.com/redis/go-redis/v9"},
	"internal/config": {"github.com/"},
}

type pkg struct {
	ImportPath string
	Imports    []string
	GoFiles    []string
	Dir        string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := testsupport.Command(t, 2*time.Minute, "go", "list", "-json", "./cmd/...", "./internal/...", "./docs")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		p.ImportPath = strings.TrimPrefix(p.ImportPath, module)
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func ours(imports []string) []string {
	var out []string
	for _, i := range imports {
		if strings.HasPrefix(i, module) {
			out = append(out, strings.TrimPrefix(i, module))
		}
	}
	return out
}

func TestImportRules(t *testing.T) {
	t.Parallel()
	for _, p := range listPackages(t) {
		rule, ok := allowed[p.ImportPath]
		if !ok {
			t.Errorf("%s has no import rule: add it to docs/architecture.md and to allowed in docs/architecture_test.go", p.ImportPath)
			continue
		}
		for _, imp := range ours(p.Imports) {
			if !slices.Contains(rule, imp) {
				t.Errorf("forbidden edge: %s imports %s (allowed: %v)", p.ImportPath, imp, rule)
			}
		}
		for _, bad := range forbidden[p.ImportPath] {
			for _, imp := range p.Imports {
				if strings.HasPrefix(imp, bad) {
					t.Errorf("forbidden edge: %s imports %s", p.ImportPath, imp)
				}
			}
		}
	}
}

// TestRedisKeysLiveInTheStore: every Redis key of ours is named in
// internal/store and nowhere else.
func TestRedisKeysLiveInTheStore(t *testing.T) {
	t.Parallel()
	for _, p := range listPackages(t) {
		if p.ImportPath == "internal/store" {
			continue
		}
		for _, f := range p.GoFiles {
			b, err := os.ReadFile(filepath.Join(p.Dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte(`"taskstack:`)) {
				t.Errorf("%s/%s names a taskstack: Redis key; keys belong to internal/store", p.ImportPath, f)
			}
		}
	}
}

func TestArchitecture(t *testing.T) {
	pkgs := listPackages(t)
	raw, err := os.ReadFile("architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for _, p := range pkgs {
		if strings.HasPrefix(p.ImportPath, "internal/") && !strings.Contains(doc, "\n### "+p.ImportPath+"\n") {
			t.Errorf("docs/architecture.md has no section \"### %s\"", p.ImportPath)
		}
	}
	want := mermaid(pkgs)
	i, j := strings.Index(doc, graphStart), strings.Index(doc, graphEnd)
	if i < 0 || j < i {
		t.Fatalf("docs/architecture.md lacks the markers %q … %q", graphStart, graphEnd)
	}
	if strings.TrimSpace(doc[i+len(graphStart):j]) == strings.TrimSpace(want) {
		return
	}
	if *update {
		doc = doc[:i+len(graphStart)] + "\n" + want + doc[j:]
		if err := os.WriteFile("architecture.md", []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("the package graph in docs/architecture.md is out of date; run:\n  go test ./docs -run TestArchitecture -update\nwant:\n%s", want)
}

// mermaid draws our packages and their direct imports of each other; the
// four mains share one node.
func mermaid(pkgs []pkg) string {
	edges := map[string]bool{}
	for _, p := range pkgs {
		from := p.ImportPath
		if strings.HasPrefix(from, "cmd/") {
			from = "cmd/*"
		}
		if from == "internal/testsupport" {
			continue
		}
		for _, imp := range ours(p.Imports) {
			edges[fmt.Sprintf("  %s --> %s", node(from), node(imp))] = true
		}
	}
	lines := make([]string, 0, len(edges))
	for e := range edges {
		lines = append(lines, e)
	}
	slices.Sort(lines)
	var b strings.Builder
	b.WriteString("```mermaid\ngraph TD\n")
	w := bufio.NewWriter(&b)
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	w.Flush()
	b.WriteString("```\n")
	return b.String()
}

func node(path string) string {
	id := strings.NewReplacer("/", "_", "*", "all").Replace(path)
	return id + `["` + path + `"]`
}

package docs_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"taskstack/internal/testsupport"
)

// TestTasksWalkThroughCompiles keeps docs/tasks.md true: the example type's
// file, added to internal/tasks with its one catalogue line, builds and
// vets (through go's -overlay, without touching the tree).
func TestTasksWalkThroughCompiles(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("tasks.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)### 1\\. The file: `internal/tasks/(\\w+\\.go)`\n\n```go\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/tasks.md has no example file under \"### 1. The file\"")
	}
	line := regexp.MustCompile(`(?m)^\t\t(\w+), // <- here$`).FindSubmatch(doc)
	if line == nil {
		t.Fatal("docs/tasks.md shows no catalogue line marked // <- here")
	}
	root, _ := filepath.Abs("..")
	cat, err := os.ReadFile(filepath.Join(root, "internal/tasks/catalogue.go"))
	if err != nil {
		t.Fatal(err)
	}
	const anchor = "\t\tWebhook(d.Webhook),\n"
	if !strings.Contains(string(cat), anchor) {
		t.Fatalf("internal/tasks/catalogue.go no longer lists %q: update this test and docs/tasks.md", anchor)
	}
	dir := t.TempDir()
	newFile, newCat := filepath.Join(dir, string(m[1])), filepath.Join(dir, "catalogue.go")
	if err := os.WriteFile(newFile, m[2], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(newCat, []byte(strings.Replace(string(cat), anchor, anchor+"\t\t"+string(line[1])+",\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	overlay, _ := json.Marshal(map[string]map[string]string{"Replace": {
		filepath.Join(root, "internal/tasks", string(m[1])): newFile,
		filepath.Join(root, "internal/tasks/catalogue.go"):  newCat,
	}})
	ov := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ov, overlay, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := testsupport.Command(t, 3*time.Minute, "go", "vet", "-overlay", ov, "./internal/tasks") // compiles, on a loaded machine
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("the walk-through's type does not build with its catalogue line:\n%s", out)
	}
}

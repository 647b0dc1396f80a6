// Package thirdparty holds the code taskstack carries from other projects
// with a patch of its own, and the tests that keep each copy honest: it is
// exactly upstream plus the patch in the repository, and the module
// requires the version the copy was made from.
package thirdparty

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite third_party/asynq/UPSTREAM.sha256 from the module cache")

const (
	asynqModule = "github.com/hibiken/asynq"
	asynqDir    = "asynq"
)

// ours are the files in third_party/asynq that are not asynq's.
var ours = []string{"README.md", "TASKSTACK.patch", "UPSTREAM.sha256", "VERSION"}

// TestAsynqVersion fails when go.mod requires another asynq than the one
// the patched copy was made from: an upgrade must re-check whether upstream
// fixed what TASKSTACK.patch fixes (README.md says what), then either drop
// the replace or make a new copy and re-apply the patch.
func TestAsynqVersion(t *testing.T) {
	t.Parallel()
	want := strings.TrimSpace(readFile(t, filepath.Join(asynqDir, "VERSION")))
	for _, gomod := range []struct{ path, replace string }{
		{filepath.Join("..", "go.mod"), "./third_party/asynq"},
		{filepath.Join("..", "deploy", "checks", "go.mod"), "../../third_party/asynq"},
	} {
		required, replaced := "", ""
		for line := range strings.Lines(readFile(t, gomod.path)) {
			f := strings.Fields(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "require")))
			switch {
			case len(f) >= 2 && f[0] == asynqModule:
				required = f[1]
			case len(f) >= 4 && f[0] == "replace" && f[1] == asynqModule && f[2] == "=>":
				replaced = f[3]
			}
		}
		if gomod.path == filepath.Join("..", "go.mod") && required != want {
			t.Errorf("%s requires %s %s, but third_party/asynq is a patched copy of %s.\n"+
				"Re-check third_party/asynq/README.md against the new release: if upstream fixed both points,\n"+
				"remove the replace and third_party/asynq; otherwise copy the new sources, re-apply TASKSTACK.patch,\n"+
				"regenerate UPSTREAM.sha256 (go test ./third_party -run TestAsynqCopy -update) and bump VERSION.",
				gomod.path, asynqModule, required, want)
		}
		if replaced != gomod.replace {
			t.Errorf("%s: replace %s => %q, want %q (every module that builds taskstack must build the patched asynq)",
				gomod.path, asynqModule, replaced, gomod.replace)
		}
	}
}

// TestAsynqCopy checks that third_party/asynq is upstream plus
// TASKSTACK.patch and nothing else: each patched file, with the patch taken
// back out, and each other file hash to the upstream files listed in
// UPSTREAM.sha256. When the upstream module is in the module cache (`go mod
// download github.com/hibiken/asynq@<VERSION>`), that list is checked
// against it too, and -update rewrites it from there.
func TestAsynqCopy(t *testing.T) {
	t.Parallel()
	version := strings.TrimSpace(readFile(t, filepath.Join(asynqDir, "VERSION")))
	patches := parsePatch(t, readFile(t, filepath.Join(asynqDir, "TASKSTACK.patch")))
	copied := listFiles(t, asynqDir)

	upstreamDir := moduleCacheDir(t, asynqModule, version)
	if *update {
		if upstreamDir == "" {
			t.Fatalf("-update needs %s@%s in the module cache: go mod download %s@%s", asynqModule, version, asynqModule, version)
		}
		writeManifest(t, upstreamDir)
	}
	manifest := readManifest(t)

	for _, name := range copied {
		if _, ok := manifest[name]; !ok {
			t.Errorf("third_party/asynq/%s is not an upstream file (UPSTREAM.sha256); taskstack's own files are %v", name, ours)
		}
	}
	for name, sum := range manifest {
		got, err := os.ReadFile(filepath.Join(asynqDir, name))
		if err != nil {
			t.Errorf("upstream file %s is missing from the copy: %v", name, err)
			continue
		}
		if p, ok := patches[name]; ok {
			got, err = p.apply(got, true)
			if err != nil {
				t.Errorf("%s: taking TASKSTACK.patch back out: %v", name, err)
				continue
			}
		}
		if h := sha256Hex(got); h != sum {
			t.Errorf("third_party/asynq/%s differs from upstream %s beyond TASKSTACK.patch (sha256 %s, want %s): put every change in the patch", name, version, h, sum)
		}
	}
	for name := range patches {
		if _, ok := manifest[name]; !ok {
			t.Errorf("TASKSTACK.patch changes %s, which is not an upstream file", name)
		}
	}

	if upstreamDir == "" {
		t.Logf("%s@%s is not in the module cache: checked the copy against UPSTREAM.sha256 only", asynqModule, version)
		return
	}
	upstream := map[string]bool{}
	for _, name := range listFiles(t, upstreamDir) {
		if carried(name) {
			upstream[name] = true
			if _, ok := manifest[name]; !ok {
				t.Errorf("upstream %s is not carried in third_party/asynq", name)
			}
		}
	}
	for name, sum := range manifest {
		if !upstream[name] {
			t.Errorf("UPSTREAM.sha256 lists %s, which upstream %s does not have (or taskstack does not carry)", name, version)
			continue
		}
		if h := sha256Hex([]byte(readFile(t, filepath.Join(upstreamDir, name)))); h != sum {
			t.Errorf("UPSTREAM.sha256: %s hashes to %s upstream, not %s", name, h, sum)
		}
	}
}

// TestAsynqPatchApplies checks that the patch's two changes are in the
// copy, read from the code rather than from the hashes: the syncer closures
// make their own context, and the recoverer's interval and margin are
// settings.
func TestAsynqPatchApplies(t *testing.T) {
	t.Parallel()
	processor := readFile(t, filepath.Join(asynqDir, "processor.go"))
	for _, call := range []string{"MarkAsComplete(ctx, msg)", "Done(ctx, msg)", "Retry(ctx, msg, retryAt", "Archive(ctx, msg, e.Error())"} {
		want := "fn: func() error {\n" +
			"\t\t\t\t// taskstack: a context of its own; the one above is cancelled\n" +
			"\t\t\t\t// by the deferred cancel before the syncer runs this.\n" +
			"\t\t\t\tctx, cancel := context.WithDeadline(context.Background(), l.Deadline())\n" +
			"\t\t\t\tdefer cancel()\n" +
			"\t\t\t\treturn p.broker." + call
		if !strings.Contains(processor, want) {
			t.Errorf("processor.go: the syncer closure calling %s does not make its own context", call)
		}
	}
	server := readFile(t, filepath.Join(asynqDir, "server.go"))
	for _, want := range []string{"RecovererInterval time.Duration", "LeaseExpiryMargin time.Duration", "interval:       recovererInterval,", "margin:         cfg.LeaseExpiryMargin,"} {
		if !strings.Contains(server, want) {
			t.Errorf("server.go lacks %q", want)
		}
	}
	if recoverer := readFile(t, filepath.Join(asynqDir, "recoverer.go")); !strings.Contains(recoverer, "cutoff := time.Now().Add(-r.margin)") {
		t.Error("recoverer.go: the lease-expiry cutoff is not the configured margin")
	}
}

// carried reports whether taskstack carries an upstream file: the sources
// and the licence, not tests, docs or test helpers.
func carried(name string) bool {
	switch {
	case name == "LICENSE" || name == "go.mod" || name == "internal/proto/asynq.proto":
		return true
	case !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go"):
		return false
	case strings.HasPrefix(name, "internal/testutil/") || strings.HasPrefix(name, "internal/testbroker/"):
		return false
	case strings.HasPrefix(name, "tools/") || strings.HasPrefix(name, "x/"):
		return false
	}
	return true
}

func listFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if !slices.Contains(ours, rel) {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func moduleCacheDir(t *testing.T, module, version string) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Logf("go env GOMODCACHE: %v", err)
		return ""
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), module+"@"+version)
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return ""
	}
	return dir
}

const manifestPath = asynqDir + "/UPSTREAM.sha256"

func readManifest(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(readFile(t, manifestPath)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("%s: malformed line %q", manifestPath, line)
		}
		m[name] = sum
	}
	if len(m) == 0 {
		t.Fatalf("%s lists no file", manifestPath)
	}
	return m
}

func writeManifest(t *testing.T, upstreamDir string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("# sha256 of the upstream files carried in third_party/asynq, before TASKSTACK.patch\n")
	b.WriteString("# (sha256sum format; regenerate: go test ./third_party -run TestAsynqCopy -update)\n")
	for _, name := range listFiles(t, upstreamDir) {
		if carried(name) {
			fmt.Fprintf(&b, "%s  %s\n", sha256Hex([]byte(readFile(t, filepath.Join(upstreamDir, name)))), name)
		}
	}
	if err := os.WriteFile(manifestPath, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// filePatch is one file's hunks of a unified diff.
type filePatch struct{ hunks []hunk }

type hunk struct {
	oldStart int      // 1-based line in the original
	lines    []string // with their ' ', '-' or '+' prefix, without newline
}

// parsePatch reads a unified diff (git diff format, paths a/... b/...).
func parsePatch(t *testing.T, diff string) map[string]*filePatch {
	t.Helper()
	out := map[string]*filePatch{}
	var cur *filePatch
	lines := strings.Split(diff, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.HasPrefix(l, "+++ "):
			name := strings.TrimPrefix(strings.TrimPrefix(l, "+++ "), "b/")
			cur = &filePatch{}
			out[name] = cur
		case strings.HasPrefix(l, "@@ "):
			if cur == nil {
				t.Fatalf("TASKSTACK.patch line %d: hunk before a file header", i+1)
			}
			var oldStart, oldLen, newStart, newLen int
			if _, err := fmt.Sscanf(normalizeHunkHeader(l), "@@ -%d,%d +%d,%d @@", &oldStart, &oldLen, &newStart, &newLen); err != nil {
				t.Fatalf("TASKSTACK.patch line %d: %q: %v", i+1, l, err)
			}
			h := hunk{oldStart: oldStart}
			for seenOld, seenNew := 0, 0; seenOld < oldLen || seenNew < newLen; {
				i++
				if i >= len(lines) {
					t.Fatalf("TASKSTACK.patch: hunk at %q ends early", l)
				}
				body := lines[i]
				if body == "" {
					body = " " // an empty context line
				}
				switch body[0] {
				case ' ':
					seenOld++
					seenNew++
				case '-':
					seenOld++
				case '+':
					seenNew++
				case '\\':
					continue // "\ No newline at end of file"
				default:
					t.Fatalf("TASKSTACK.patch: unexpected line %q in hunk %q", body, l)
				}
				h.lines = append(h.lines, body)
			}
			cur.hunks = append(cur.hunks, h)
		}
	}
	return out
}

// normalizeHunkHeader spells out the lengths a header may leave out
// ("@@ -3 +3,2 @@" means a length of 1).
func normalizeHunkHeader(h string) string {
	f := strings.Fields(h)
	if len(f) < 4 {
		return h
	}
	for i := 1; i <= 2; i++ {
		if !strings.Contains(f[i], ",") {
			f[i] += ",1"
		}
	}
	return strings.Join(f[:4], " ")
}

// apply applies the patch to src, or takes it back out when reverse is set.
func (p *filePatch) apply(src []byte, reverse bool) ([]byte, error) {
	lines := strings.SplitAfter(string(src), "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	var out []string
	pos := 0 // next unconsumed line of src (0-based)
	for _, h := range p.hunks {
		var from, to []string
		for _, l := range h.lines {
			kind, text := l[0], l[1:]+"\n"
			if reverse && kind != ' ' {
				kind = map[byte]byte{'-': '+', '+': '-'}[kind]
			}
			switch kind {
			case ' ':
				from, to = append(from, text), append(to, text)
			case '-':
				from = append(from, text)
			case '+':
				to = append(to, text)
			}
		}
		// Hunks come in order: the first match from pos on is this one.
		start := -1
		for at := pos; at+len(from) <= len(lines); at++ {
			if slices.Equal(lines[at:at+len(from)], from) {
				start = at
				break
			}
		}
		if start < 0 {
			return nil, fmt.Errorf("hunk at line %d does not match", h.oldStart)
		}
		out = append(out, lines[pos:start]...)
		out = append(out, to...)
		pos = start + len(from)
	}
	out = append(out, lines[pos:]...)
	return []byte(strings.Join(out, "")), nil
}

package config

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the configuration table in README.md")

const (
	tableStart = "<!-- config-table:start (generated: go test ./internal/config -run TestREADMETable -update) -->"
	tableEnd   = "<!-- config-table:end -->"
)

// renderTable renders every variable of every binary, from the loaders.
func renderTable() string {
	type row struct {
		v    Var
		bins []string
	}
	var order []string
	rows := map[string]*row{}
	for _, bin := range []string{"app", "worker", "monitor"} {
		for _, v := range Vars(bin) {
			r, ok := rows[v.Name]
			if !ok {
				r = &row{v: v}
				rows[v.Name] = r
				order = append(order, v.Name)
			}
			r.bins = append(r.bins, bin)
		}
	}
	var b strings.Builder
	b.WriteString("| Variable | Read by | Default | Meaning |\n|---|---|---|---|\n")
	for _, name := range order {
		r := rows[name]
		bins := strings.Join(r.bins, ", ")
		if len(r.bins) == 3 {
			bins = "all"
		}
		def := "`" + r.v.Default + "`"
		if r.v.Default == "" {
			def = "—"
		}
		help := strings.ReplaceAll(r.v.Help, "|", `\|`)
		if r.v.Secret {
			help += " **Secret.**"
		}
		if r.v.Passthrough {
			help += " (read by the library)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", name, bins, def, help)
	}
	return b.String()
}

func TestREADMETable(t *testing.T) {
	path := filepath.Join("..", "..", "README.md")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	i, j := strings.Index(s, tableStart), strings.Index(s, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the markers %q … %q", tableStart, tableEnd)
	}
	want := renderTable()
	got := strings.TrimSpace(s[i+len(tableStart) : j])
	if got == strings.TrimSpace(want) {
		return
	}
	if *update {
		s = s[:i+len(tableStart)] + "\n" + want + s[j:]
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md configuration table is out of date with internal/config; run:\n  go test ./internal/config -run TestREADMETable -update")
}

package compose

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// runbooksDir holds one runbook per alert, named after it. runbook_url is
// that file's path from the repository root: the repository has no public
// URL to link to (docs/observability.md, "Alerts").
const runbooksDir = "docs/runbooks"

// dashboardRef is how a runbook names a Grafana dashboard: **taskstack / Queues**.
var dashboardRef = regexp.MustCompile(`\*\*(taskstack / [^*]+)\*\*`)

// TestRunbooks checks that every alert links its runbook, that the runbook
// exists and says what it must, and that every runbook belongs to an alert.
// The Kubernetes PrometheusRule is generated from the same rule file and
// checked equal to it (deploy/checks/k8s), so its alerts link the same files.
func TestRunbooks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rules := loadRules(t, filepath.Join(b.composeDir, rulesFile))

	dashboards := map[string]bool{}
	for f := range loadDashboards(t, b.root) {
		raw, err := os.ReadFile(filepath.Join(b.root, "grafana", "dashboards", f))
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Title string `json:"title"`
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		dashboards[d.Title] = true
	}

	alerts := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			if alerts[r.Alert] {
				continue // a second rule of the same alert (fast and slow burn)
			}
			alerts[r.Alert] = true
			want := runbooksDir + "/" + r.Alert + ".md"
			if got := r.Annotations["runbook_url"]; got != want {
				t.Errorf("%s: runbook_url %q, want %q", r.Alert, got, want)
			}
			raw, err := os.ReadFile(filepath.Join(b.root, want))
			if err != nil {
				t.Errorf("%s: no runbook: %v", r.Alert, err)
				continue
			}
			text := string(raw)
			if first, _, _ := strings.Cut(text, "\n"); first != "# "+r.Alert {
				t.Errorf("%s: the runbook's first line is %q, want the alert's name as its title", want, first)
			}
			for _, section := range []string{"## What it means", "## How to confirm", "## What to do"} {
				if !strings.Contains(text, "\n"+section+"\n") {
					t.Errorf("%s: no section %q", want, section)
				}
			}
			_, confirm, _ := strings.Cut(text, "\n## How to confirm\n")
			confirm, _, _ = strings.Cut(confirm, "\n## ")
			refs := dashboardRef.FindAllStringSubmatch(strings.Join(strings.Fields(confirm), " "), -1)
			if len(refs) == 0 {
				t.Errorf("%s: \"How to confirm\" names no Grafana dashboard (**taskstack / ...**)", want)
			}
			for _, m := range refs {
				if !dashboards[m[1]] {
					t.Errorf("%s: names dashboard %q, which grafana/dashboards does not have", want, m[1])
				}
			}
		}
	}

	entries, err := os.ReadDir(filepath.Join(b.root, runbooksDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".md")
		if !ok || e.IsDir() || !alerts[name] {
			t.Errorf("%s/%s is not the runbook of an alert in %s", runbooksDir, e.Name(), rulesFile)
		}
	}
}

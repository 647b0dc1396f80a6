package compose

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"sigs.k8s.io/yaml"
)

var dashboardFiles = []string{"queues.json", "workers.json", "app.json", "slo.json"}

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Datasource datasourceRef   `json:"datasource"`
			Query      json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	Targets    []struct {
		RefID      string         `json:"refId"`
		Expr       string         `json:"expr"`
		Exemplar   bool           `json:"exemplar"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // collapsed rows
}

// panels flattens rows.
func (d dashboard) panels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

func loadDashboards(t *testing.T, root string) map[string]dashboard {
	t.Helper()
	out := map[string]dashboard{}
	for _, f := range dashboardFiles {
		raw, err := os.ReadFile(filepath.Join(root, "grafana", "dashboards", f))
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[f] = d
	}
	return out
}

// grafanaMount returns where compose mounts a repository directory in the
// grafana container.
func grafanaMount(t *testing.T, s types.ServiceConfig, source string) string {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && filepath.Clean(v.Source) == filepath.Clean(source) {
			if !v.ReadOnly {
				t.Errorf("grafana mounts %s read-write", source)
			}
			return v.Target
		}
	}
	t.Fatalf("grafana does not mount %s", source)
	return ""
}

func TestGrafanaProvisioning(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.mustLoad(t, "prod")
	g := p.Services["grafana"]
	if got := grafanaMount(t, g, filepath.Join(b.root, "grafana", "provisioning")); got != "/etc/grafana/provisioning" {
		t.Errorf("provisioning mounted at %s", got)
	}
	dashDir := grafanaMount(t, g, filepath.Join(b.root, "grafana", "dashboards"))

	// Data sources: fixed UIDs, URLs of compose services, exemplars to traces.
	raw, err := os.ReadFile(filepath.Join(b.root, "grafana", "provisioning", "datasources", "datasources.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var ds struct {
		APIVersion  int `json:"apiVersion"`
		Datasources []struct {
			Name     string         `json:"name"`
			UID      string         `json:"uid"`
			Type     string         `json:"type"`
			URL      string         `json:"url"`
			JSONData map[string]any `json:"jsonData"`
		} `json:"datasources"`
	}
	if err := yaml.Unmarshal(raw, &ds); err != nil {
		t.Fatal(err)
	}
	byUID := map[string]string{}
	for _, d := range ds.Datasources {
		byUID[d.UID] = d.Type
		want := map[string]string{"prometheus": "http://prometheus:9090", "jaeger": "http://jaeger:16686"}[d.UID]
		if d.URL != want {
			t.Errorf("data source %s: url %q, want %q", d.UID, d.URL, want)
		}
		if d.UID == "prometheus" {
			dest, _ := json.Marshal(d.JSONData["exemplarTraceIdDestinations"])
			if !strings.Contains(string(dest), `"datasourceUid":"jaeger"`) || !strings.Contains(string(dest), `"name":"trace_id"`) {
				t.Errorf("prometheus data source does not link exemplar trace_id to jaeger: %s", dest)
			}
		}
	}
	if byUID["prometheus"] != "prometheus" || byUID["jaeger"] != "jaeger" {
		t.Errorf("data sources by uid = %v, want prometheus and jaeger", byUID)
	}
	for _, svc := range []string{"prometheus", "jaeger"} {
		if _, ok := p.Services[svc]; !ok {
			t.Errorf("data source %s points at a service compose does not run", svc)
		}
	}

	// Dashboard provider reads where compose mounts the dashboards.
	raw, err = os.ReadFile(filepath.Join(b.root, "grafana", "provisioning", "dashboards", "taskstack.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var prov struct {
		Providers []struct {
			Type    string `json:"type"`
			Options struct {
				Path string `json:"path"`
			} `json:"options"`
		} `json:"providers"`
	}
	if err := yaml.Unmarshal(raw, &prov); err != nil {
		t.Fatal(err)
	}
	if len(prov.Providers) != 1 || prov.Providers[0].Type != "file" || prov.Providers[0].Options.Path != dashDir {
		t.Errorf("dashboard providers %+v, want one file provider reading %s", prov.Providers, dashDir)
	}
	home := envOf(t, g)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
	if dir, f := filepath.Split(home); filepath.Clean(dir) != dashDir || !slices.Contains(dashboardFiles, f) {
		t.Errorf("home dashboard %q is not one of the provisioned files", home)
	}

	// Every dashboard file is checked here and queried by
	// TestPrometheusScrapesRealBinaries: none may be left out of the list.
	files, err := filepath.Glob(filepath.Join(b.root, "grafana", "dashboards", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		files[i] = filepath.Base(f)
	}
	if !slices.Equal(files, slices.Sorted(slices.Values(dashboardFiles))) {
		t.Errorf("grafana/dashboards has %v, dashboardFiles lists %v", files, dashboardFiles)
	}

	// Dashboards: unique UIDs, every query on a provisioned data source.
	uids := map[string]string{}
	for f, d := range loadDashboards(t, b.root) {
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: no uid or title", f)
		}
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s and %s share uid %s", f, other, d.UID)
		}
		uids[d.UID] = f
		ids := map[int]bool{}
		exemplars := 0
		for _, pn := range d.panels() {
			if ids[pn.ID] {
				t.Errorf("%s: panel id %d used twice", f, pn.ID)
			}
			ids[pn.ID] = true
			if pn.Type == "row" {
				continue
			}
			if len(pn.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", f, pn.Title)
			}
			for _, tg := range pn.Targets {
				ref := tg.Datasource
				if ref == nil {
					ref = pn.Datasource
				}
				if ref == nil || byUID[ref.UID] != "prometheus" {
					t.Errorf("%s: panel %q query %s is not on the provisioned Prometheus data source", f, pn.Title, tg.RefID)
				}
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("%s: panel %q query %s is empty", f, pn.Title, tg.RefID)
				}
				if tg.Exemplar {
					exemplars++
				}
			}
		}
		if f == "workers.json" && exemplars == 0 {
			t.Errorf("workers.json shows no exemplars")
		}
		for _, v := range d.Templating.List {
			if v.Type == "query" && byUID[v.Datasource.UID] != "prometheus" {
				t.Errorf("%s: variable %s is not on the Prometheus data source", f, v.Name)
			}
		}
	}
}

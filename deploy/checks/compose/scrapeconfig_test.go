package compose

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"sigs.k8s.io/yaml"
)

type scrapeConfig struct {
	JobName       string `json:"job_name"`
	StaticConfigs []struct {
		Targets []string `json:"targets"`
	} `json:"static_configs"`
	DNSSDConfigs []struct {
		Names []string `json:"names"`
		Type  string   `json:"type"`
		Port  int      `json:"port"`
	} `json:"dns_sd_configs"`
}

// TestScrapeConfigMatchesCompose: the Prometheus jobs point at the compose
// services on the ports the binaries listen on, every worker replica is
// found by DNS, and the job names the rules and dashboards use exist.
func TestScrapeConfigMatchesCompose(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.mustLoad(t, "prod")
	raw, err := os.ReadFile(filepath.Join(b.composeDir, "prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ScrapeConfigs []scrapeConfig `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	port := func(service, addrVar string) string {
		_, port, err := net.SplitHostPort(envOf(t, p.Services[service])[addrVar])
		if err != nil {
			t.Fatalf("%s %s: %v", service, addrVar, err)
		}
		return port
	}
	want := map[string]string{
		"prometheus": "localhost:9090",
		"app":        "app:" + port("app", "APP_ADMIN_ADDR"),
		"monitor":    "monitor:" + port("monitor", "MONITOR_ADDR"),
	}
	var jobs []string
	for _, sc := range cfg.ScrapeConfigs {
		jobs = append(jobs, sc.JobName)
		if sc.JobName == "worker" {
			if len(sc.DNSSDConfigs) != 1 || !slices.Equal(sc.DNSSDConfigs[0].Names, []string{"worker"}) ||
				sc.DNSSDConfigs[0].Type != "A" || len(sc.StaticConfigs) > 0 {
				t.Errorf("worker job must find every replica by DNS (A records of the service name): %+v", sc)
			} else if got := sc.DNSSDConfigs[0].Port; got == 0 || port("worker", "WORKER_ADMIN_ADDR") != strconv.Itoa(got) {
				t.Errorf("worker job scrapes port %d, worker listens on %s", got, port("worker", "WORKER_ADMIN_ADDR"))
			}
			continue
		}
		if len(sc.StaticConfigs) != 1 || !slices.Equal(sc.StaticConfigs[0].Targets, []string{want[sc.JobName]}) {
			t.Errorf("job %s targets %+v, want [%s]", sc.JobName, sc.StaticConfigs, want[sc.JobName])
		}
	}
	slices.Sort(jobs)
	if !slices.Equal(jobs, []string{"app", "monitor", "prometheus", "worker"}) {
		t.Errorf("jobs %v, want app, monitor, prometheus, worker", jobs)
	}

	// Prometheus reads this directory as /etc/prometheus.
	prom := p.Services["prometheus"]
	if !slices.Contains(prom.Command, "--config.file=/etc/prometheus/prometheus.yml") || !slices.Contains(prom.Command, "--enable-feature=exemplar-storage") {
		t.Errorf("prometheus command %v", prom.Command)
	}
	mounted := slices.ContainsFunc(prom.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Type == types.VolumeTypeBind && v.Source == filepath.Join(b.composeDir, "prometheus") && v.Target == "/etc/prometheus" && v.ReadOnly
	})
	if !mounted {
		t.Errorf("deploy/compose/prometheus is not mounted read-only at /etc/prometheus: %+v", prom.Volumes)
	}

	// job="..." in rules and dashboards names a real job.
	jobRef := regexp.MustCompile(`job\s*=~?\s*"([^"]*)"`)
	var exprs []string
	for _, g := range loadRules(t, filepath.Join(b.composeDir, rulesFile)).Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	for _, d := range loadDashboards(t, b.root) {
		for _, pn := range d.panels() {
			for _, tg := range pn.Targets {
				exprs = append(exprs, tg.Expr)
			}
		}
	}
	for _, e := range exprs {
		for _, m := range jobRef.FindAllStringSubmatch(e, -1) {
			if !slices.Contains(jobs, m[1]) {
				t.Errorf("%s refers to job %q, which Prometheus does not scrape", e, m[1])
			}
		}
	}
}

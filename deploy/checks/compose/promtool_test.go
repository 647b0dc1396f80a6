package compose

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"taskstack/internal/testsupport"
)

const (
	rulesFile     = "prometheus/rules/taskstack.rules.yml"
	rulesTestFile = "prometheus/rules/taskstack.rules.test.yml"
)

func promtool(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := testsupport.Command(t, time.Minute, testsupport.LookPath(t, "promtool"), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestPromtool(t *testing.T) {
	t.Parallel()
	b := setup(t)
	t.Run("check config", func(t *testing.T) {
		t.Parallel()
		// Also checks that the rule files it names exist.
		promtool(t, b.composeDir, "check", "config", "prometheus/prometheus.yml")
	})
	t.Run("check rules", func(t *testing.T) {
		t.Parallel()
		promtool(t, b.composeDir, "check", "rules", rulesFile)
	})
	t.Run("test rules", func(t *testing.T) {
		t.Parallel()
		promtool(t, b.composeDir, "test", "rules", rulesTestFile)
	})
}

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Record      string            `json:"record"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

func loadRules(t *testing.T, path string) ruleFile {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.UnmarshalStrict(raw, &rf); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rf
}

// TestEveryAlertFiresAndStaysQuiet: promtool only runs the cases written,
// so check that each alert has a case where it fires and one where it does
// not, and that every alert says how bad it is.
func TestEveryAlertFiresAndStaysQuiet(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rules := loadRules(t, filepath.Join(b.composeDir, rulesFile))

	raw, err := os.ReadFile(filepath.Join(b.composeDir, rulesTestFile))
	if err != nil {
		t.Fatal(err)
	}
	var tests struct {
		RuleFiles []string `json:"rule_files"`
		Tests     []struct {
			Name          string `json:"name"`
			InputSeries   []any  `json:"input_series"`
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(raw, &tests); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tests.RuleFiles, []string{filepath.Base(rulesFile)}) {
		t.Errorf("test file loads %v, want [%s]", tests.RuleFiles, filepath.Base(rulesFile))
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts = append(alerts, r.Alert)
			if !fires[r.Alert] {
				t.Errorf("%s: no test case where it fires", r.Alert)
			}
			if !quiet[r.Alert] {
				t.Errorf("%s: no test case where it stays quiet", r.Alert)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: needs a summary and a description", r.Alert)
			}
		}
	}
	// What the issue asks to be covered.
	for _, want := range []string{
		"TaskstackHighQueueLatency", "TaskstackDefaultQueueLatency", "TaskstackLowQueueLatency",
		"TaskstackQueueBacklogGrowing", "TaskstackTaskFailureRatioHigh", "TaskstackArchivedTasksIncreasing",
		"TaskstackQueueStalled", "TaskstackNoWorkerUp", "TaskstackQueueMetricsAbsent", "TaskstackQueuePaused",
		"TaskstackTasksOrphaned", "TaskstackCanaryFailing",
		"TaskstackQueueLatencyBudgetBurn", "TaskstackTaskSuccessBudgetBurn", "TaskstackAPIAvailabilityBudgetBurn",
	} {
		if !slices.Contains(alerts, want) {
			t.Errorf("alert %s is missing", want)
		}
	}
	for name := range fires {
		if !slices.Contains(alerts, name) {
			t.Errorf("test cases for %s, which is not an alert in %s", name, rulesFile)
		}
	}
}

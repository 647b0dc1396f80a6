package schedule

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"taskstack/internal/tasks"
)

const goodFile = `# two entries
entries:
  - name: heartbeat
    cron: "@every 1m"
    type: demo:echo
    payload: {arg: tick, sleep: 0s}
    queue: low
  - name: nightly-report
    cron: "0 3 * * *"
    timezone: Europe/Paris
    type: demo:fail
    enabled: false
`

func TestParseGoodFile(t *testing.T) {
	t.Parallel()
	s, err := Parse("schedule.yml", []byte(goodFile), tasks.NewCatalogue())
	if err != nil {
		t.Fatal(err)
	}
	type view struct {
		Name, Cron, Timezone, Type, Queue, Payload string
		Enabled                                    bool
		Line                                       int
	}
	var got []view
	for _, e := range s.Entries {
		got = append(got, view{e.Name, e.Cron, e.Timezone, e.Type, e.Queue, string(e.Payload), e.Enabled, e.Line})
	}
	want := []view{
		{"heartbeat", "@every 1m", "", "demo:echo", "low", `{"arg":"tick","sleep":"0s"}`, true, 3},
		{"nightly-report", "0 3 * * *", "Europe/Paris", "demo:fail", "low", "", false, 8},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if p := s.Entries[0].prepared; p.Type != tasks.TypeEcho || p.Queue != "low" || string(p.Payload) != `{"arg":"tick","sleep":"0s"}` {
		t.Errorf("prepared %+v", p)
	}
	// The time zone applies: 03:00 in Paris is 01:00 or 02:00 UTC.
	next := s.Entries[1].spec.Next(time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC))
	if want := time.Date(2026, 7, 2, 1, 0, 0, 0, time.UTC); !next.Equal(want) {
		t.Errorf("next nightly run %s, want %s", next.UTC(), want)
	}
	for _, empty := range []string{"", "# nothing yet\n", "entries:\n", "entries: []\n"} {
		if s, err := Parse("s.yml", []byte(empty), tasks.NewCatalogue()); err != nil || len(s.Entries) != 0 {
			t.Errorf("Parse(%q) = %v, %v; want an empty schedule", empty, s, err)
		}
	}
}

// TestBadEntriesNameLineAndField: every problem is reported with the line
// and the field, the way an operator reading the file finds it.
func TestBadEntriesNameLineAndField(t *testing.T) {
	t.Parallel()
	entry := func(lines ...string) string { return "entries:\n  - " + strings.Join(lines, "\n    ") + "\n" }
	tests := []struct {
		name string
		file string
		want []FieldError // Message is matched as a substring
	}{
		{"unknown type", entry("name: a", "cron: '@every 1s'", "type: demo:nope"),
			[]FieldError{{Line: 4, Entry: `"a"`, Field: "type", Message: "unknown task type"}}},
		{"bad payload field", entry("name: a", "cron: '@every 1s'", "type: demo:echo", "payload:", "  arg: x", "  sleep: soon"),
			[]FieldError{{Line: 7, Entry: `"a"`, Field: "payload.sleep", Message: "not a duration"}}},
		{"unknown payload field", entry("name: a", "cron: '@every 1s'", "type: demo:echo", "payload: {colour: red}"),
			[]FieldError{{Line: 5, Entry: `"a"`, Field: "payload.colour", Message: "not a known field"}}},
		{"unknown queue", entry("name: a", "cron: '@every 1s'", "type: demo:echo", "queue: urgent"),
			[]FieldError{{Line: 5, Entry: `"a"`, Field: "queue", Message: "unknown queue"}}},
		{"bad cron", entry("name: a", "cron: '61 * * * *'", "type: demo:echo"),
			[]FieldError{{Line: 3, Entry: `"a"`, Field: "cron", Message: "not a cron line"}}},
		{"sub-second every", entry("name: a", "cron: '@every 1500ms'", "type: demo:echo"),
			[]FieldError{{Line: 3, Entry: `"a"`, Field: "cron", Message: "whole number of seconds"}}},
		{"cron time zone prefix", entry("name: a", "cron: 'CRON_TZ=UTC 0 * * * *'", "type: demo:echo"),
			[]FieldError{{Line: 3, Entry: `"a"`, Field: "cron", Message: "timezone field"}}},
		{"never fires", entry("name: a", "cron: '0 0 30 2 *'", "type: demo:echo"),
			[]FieldError{{Line: 3, Entry: `"a"`, Field: "cron", Message: "never fires"}}},
		{"bad time zone", entry("name: a", "cron: '0 3 * * *'", "timezone: Mars/Olympus", "type: demo:echo"),
			[]FieldError{{Line: 4, Entry: `"a"`, Field: "timezone", Message: "not a time zone"}}},
		{"time zone on every", entry("name: a", "cron: '@every 1h'", "timezone: UTC", "type: demo:echo"),
			[]FieldError{{Line: 4, Entry: `"a"`, Field: "timezone", Message: "no effect"}}},
		{"missing fields", entry("queue: low"),
			[]FieldError{{Line: 2, Entry: "entries[0]", Field: "name", Message: "required"}, {Line: 2, Entry: "entries[0]", Field: "cron", Message: "required"}, {Line: 2, Entry: "entries[0]", Field: "type", Message: "required"}}},
		{"bad name", entry("name: Nightly Report", "cron: '@daily'", "type: demo:echo"),
			[]FieldError{{Line: 2, Entry: "entries[0]", Field: "name", Message: "lower-case"}}},
		{"unknown field", entry("name: a", "cron: '@daily'", "type: demo:echo", "every: 5m"),
			[]FieldError{{Line: 5, Entry: `"a"`, Field: "every", Message: "not a known field"}}},
		{"enabled not a boolean", entry("name: a", "cron: '@daily'", "type: demo:echo", "enabled: maybe"),
			[]FieldError{{Line: 5, Entry: `"a"`, Field: "enabled", Message: "true or false"}}},
		{"duplicate name", "entries:\n  - {name: a, cron: '@daily', type: demo:echo}\n  - {name: a, cron: '@hourly', type: demo:echo}\n",
			[]FieldError{{Line: 3, Entry: `"a"`, Field: "name", Message: "used twice (first on line 2)"}}},
		{"entry not a mapping", "entries:\n  - just a string\n",
			[]FieldError{{Line: 2, Entry: "entries[0]", Message: "must be a mapping"}}},
		{"unknown top-level field", "entries: []\nentry: {}\n",
			[]FieldError{{Line: 2, Field: "entry", Message: "not a known field"}}},
		{"not YAML", "entries:\n  - name: a\n    cron: x: y\n",
			[]FieldError{{Line: 3, Message: "mapping values are not allowed"}}},
		{"several problems, each with its line", "entries:\n  - {name: a, cron: '@daily', type: demo:echo, queue: urgent}\n  - {name: b, cron: 'nope', type: demo:echo}\n",
			[]FieldError{{Line: 2, Entry: `"a"`, Field: "queue", Message: "unknown queue"}, {Line: 3, Entry: `"b"`, Field: "cron", Message: "not a cron line"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("schedule.yml", []byte(tt.file), tasks.NewCatalogue())
			var ferr *FileError
			if !errors.As(err, &ferr) {
				t.Fatalf("want a *FileError, got %v", err)
			}
			if len(ferr.Fields) != len(tt.want) {
				t.Fatalf("got %d problems, want %d: %v", len(ferr.Fields), len(tt.want), err)
			}
			for i, w := range tt.want {
				g := ferr.Fields[i]
				if g.Line != w.Line || g.Entry != w.Entry || g.Field != w.Field || !strings.Contains(g.Message, w.Message) {
					t.Errorf("problem %d = %+v, want %+v (message containing %q)", i, g, w, w.Message)
				}
			}
			if !strings.HasPrefix(err.Error(), "schedule file schedule.yml: line ") {
				t.Errorf("error %q does not start with the file and line", err)
			}
		})
	}
}

func TestSpecs(t *testing.T) {
	t.Parallel()
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	every90, _ := parseSpec("@every 90s", nil)
	hourly, _ := parseSpec("@hourly", nil)
	paris, _ := time.LoadLocation("Europe/Paris")
	daily3, _ := parseSpec("0 3 * * *", paris)
	tests := []struct {
		name string
		s    spec
		in   string
		want string
	}{
		// @every counts from the Unix epoch, whoever asks and whenever.
		{"every from a tick", every90, "2026-01-01T00:00:00Z", "2026-01-01T00:01:30Z"},
		{"every between ticks", every90, "2026-01-01T00:00:07.5Z", "2026-01-01T00:01:30Z"},
		{"every just before a tick", every90, "2026-01-01T00:01:29.999Z", "2026-01-01T00:01:30Z"},
		{"hourly", hourly, "2026-01-01T10:59:59Z", "2026-01-01T11:00:00Z"},
		{"winter in Paris", daily3, "2026-01-10T12:00:00Z", "2026-01-11T02:00:00Z"},
		{"summer in Paris", daily3, "2026-07-10T12:00:00Z", "2026-07-11T01:00:00Z"},
	}
	for _, tt := range tests {
		if got := tt.s.Next(at(tt.in)); !got.Equal(at(tt.want)) {
			t.Errorf("%s: Next(%s) = %s, want %s", tt.name, tt.in, got.UTC(), tt.want)
		}
	}
}

// TestMissedTickPolicy: the latest tick within the grace is enqueued when
// the scheduler starts or wakes up late; older ones are skipped, never
// enqueued in a burst.
func TestMissedTickPolicy(t *testing.T) {
	t.Parallel()
	every10, _ := parseSpec("@every 10s", nil)
	cron5, _ := parseSpec("*/5 * * * *", nil)
	base := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		s          spec
		now        time.Time
		grace      time.Duration
		wantFirst  time.Time
		wantPassed int
	}{
		{"every: last tick within grace is caught up", every10, base.Add(25 * time.Second), time.Minute, base.Add(20 * time.Second), 0},
		{"every: no grace waits for the next tick", every10, base.Add(25 * time.Second), 0, base.Add(30 * time.Second), 0},
		{"every: last tick older than grace waits", every10, base.Add(25 * time.Second), 3 * time.Second, base.Add(30 * time.Second), 0},
		{"cron: within grace", cron5, base.Add(40 * time.Second), time.Minute, base, 0},
		{"cron: older than grace", cron5, base.Add(2 * time.Minute), time.Minute, base.Add(5 * time.Minute), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := &Scheduler{m: mustMetrics(t), states: map[string]*state{}, sched: &Schedule{}}
			sc.apply(&Schedule{Entries: []Entry{{Name: "e", Enabled: true, spec: tt.s}}}, tt.now, tt.grace)
			if got := sc.states["e"].due; !got.Equal(tt.wantFirst) {
				t.Errorf("first tick %s, want %s", got, tt.wantFirst)
			}
		})
	}
	// A scheduler that wakes up 95s late passes over 9 ticks and enqueues
	// only the latest one.
	latest, passed := dueTicks(every10, base, base.Add(95*time.Second))
	if !latest.Equal(base.Add(90*time.Second)) || passed != 9 {
		t.Errorf("every: dueTicks = %s, %d passed; want +90s, 9", latest, passed)
	}
	latest, passed = dueTicks(cron5, base, base.Add(16*time.Minute))
	if !latest.Equal(base.Add(15*time.Minute)) || passed != 3 {
		t.Errorf("cron: dueTicks = %s, %d passed; want +15m, 3", latest, passed)
	}
}

func mustMetrics(t *testing.T) *metrics {
	t.Helper()
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

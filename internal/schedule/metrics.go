package schedule

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a tick, the outcome label of taskstack_schedule_runs_total.
const (
	outcomeEnqueued  = "enqueued"  // this replica enqueued the tick's task
	outcomeDuplicate = "duplicate" // another replica had (Redis refused the task ID)
	outcomeError     = "error"     // the enqueue failed (retried within the grace)
	outcomeMissed    = "missed"    // the tick passed without an attempt in time
)

var outcomes = []string{outcomeEnqueued, outcomeDuplicate, outcomeError, outcomeMissed}

const (
	reloadOK    = "ok"
	reloadError = "error"
)

// metrics are the scheduler's series. Entry labels come from the file
// (at most MaxEntries) and are deleted when an entry is removed.
type metrics struct {
	runs    *prometheus.CounterVec
	lastRun *prometheus.GaugeVec
	nextRun *prometheus.GaugeVec
	reloads *prometheus.CounterVec
	refused prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "taskstack_schedule_runs_total",
			Help: "Ticks of periodic tasks by entry and outcome: enqueued (by this replica), duplicate (another replica enqueued it), error, missed.",
		}, []string{"entry", "outcome"}),
		lastRun: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "taskstack_schedule_last_run_timestamp_seconds",
			Help: "Tick time of the last task of a periodic entry known to be enqueued (by any replica this one saw refuse it).",
		}, []string{"entry"}),
		nextRun: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "taskstack_schedule_next_run_timestamp_seconds",
			Help: "Next tick of a periodic entry (absent when disabled).",
		}, []string{"entry"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "taskstack_schedule_reloads_total",
			Help: "Changes of the schedule file by outcome: ok (applied) or error (refused; the schedule in force is kept).",
		}, []string{"outcome"}),
		refused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "taskstack_schedule_file_refused",
			Help: "1 while the schedule file on disk is refused (invalid or unreadable) and the previous schedule runs; else 0.",
		}),
	}
	for _, c := range []prometheus.Collector{m.runs, m.lastRun, m.nextRun, m.reloads, m.refused} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("schedule metrics: %w", err)
		}
	}
	m.reloads.WithLabelValues(reloadOK)
	m.reloads.WithLabelValues(reloadError)
	return m, nil
}

// add pre-creates an entry's run counters, so rates start from zero.
func (m *metrics) add(entry string) {
	for _, o := range outcomes {
		m.runs.WithLabelValues(entry, o)
	}
}

func (m *metrics) remove(entry string) {
	for _, o := range outcomes {
		m.runs.DeleteLabelValues(entry, o)
	}
	m.lastRun.DeleteLabelValues(entry)
	m.nextRun.DeleteLabelValues(entry)
}

package canary

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Successes is what the recorder and the collector need of the store.
type Successes interface {
	RecordCanary(ctx context.Context, queue string, at time.Time) error
	CanarySuccesses(ctx context.Context) (map[string]time.Time, error)
}

// Recorder is the worker's side: canary:ping's handler reports each
// completion to it (tasks.CanaryRecorder).
type Recorder struct {
	store   Successes
	log     *slog.Logger
	latency *prometheus.HistogramVec
}

// NewRecorder returns a recorder that writes successes to st and observes
// taskstack_canary_latency_seconds on reg.
func NewRecorder(st Successes, reg prometheus.Registerer, log *slog.Logger, queues []string) (*Recorder, error) {
	r := &Recorder{store: st, log: log, latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "taskstack_canary_latency_seconds",
		Help:    "Canary tasks' time from enqueue to completion, by queue: the whole path, as a user's task takes it.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
	}, []string{"queue"})}
	if err := reg.Register(r.latency); err != nil {
		return nil, fmt.Errorf("canary metrics: %w", err)
	}
	for _, q := range queues {
		r.latency.WithLabelValues(q)
	}
	return r, nil
}

// CanarySucceeded records one completion.
func (r *Recorder) CanarySucceeded(ctx context.Context, queue string, enqueuedAt, doneAt time.Time) {
	if !enqueuedAt.IsZero() {
		r.latency.WithLabelValues(queue).Observe(max(0, doneAt.Sub(enqueuedAt).Seconds()))
	}
	if err := r.store.RecordCanary(ctx, queue, doneAt); err != nil {
		r.log.WarnContext(ctx, "canary success not recorded", slog.String("queue", queue), slog.Any("err", err))
	}
}

// collectTimeout bounds the collector's Redis read in a scrape.
const collectTimeout = 2 * time.Second

// Collector exports taskstack_canary_last_success_timestamp_seconds from
// the store at each scrape. The monitor runs it: it answers whether or not
// any worker is up, which is when the gauge matters.
type Collector struct {
	store Successes
	log   *slog.Logger
	desc  *prometheus.Desc
}

// NewCollector returns the collector of the canary successes in st.
func NewCollector(st Successes, log *slog.Logger) *Collector {
	return &Collector{store: st, log: log, desc: prometheus.NewDesc(
		"taskstack_canary_last_success_timestamp_seconds",
		"When a canary task last completed on a queue (any worker), in Unix seconds; absent for a queue that never had one.",
		[]string{"queue"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector. When Redis cannot be read the
// gauge is left out of the scrape (and the monitor's Redis metrics say
// why).
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	last, err := c.store.CanarySuccesses(ctx)
	if err != nil {
		c.log.Debug("canary successes not read", slog.Any("err", err))
		return
	}
	for q, at := range last {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(at.UnixMilli())/1000, q)
	}
}

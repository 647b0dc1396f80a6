package monitor

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"taskstack/internal/store"
)

// orphanCollector exports, per queue, the running tasks whose lease has
// expired: their worker died (or lost Redis) and no worker has recovered
// them yet. asynq's own collector counts them as plain "active".
//
// Like asynq's collector it reads Redis on every scrape, from this one
// exporter, and emits nothing when Redis does not answer.
type orphanCollector struct {
	orphaned func(ctx context.Context) ([]store.Orphans, error)
	log      *slog.Logger
	count    *prometheus.Desc
	oldest   *prometheus.Desc
}

// orphanScrapeTimeout bounds one scrape's Redis work.
const orphanScrapeTimeout = 2 * time.Second

func newOrphanCollector(orphaned func(ctx context.Context) ([]store.Orphans, error), log *slog.Logger) *orphanCollector {
	return &orphanCollector{
		orphaned: orphaned,
		log:      log,
		count: prometheus.NewDesc("taskstack_tasks_orphaned",
			"Active tasks whose lease has expired, by queue: their worker died or lost Redis and no worker has recovered them yet.",
			[]string{"queue"}, nil),
		oldest: prometheus.NewDesc("taskstack_tasks_orphaned_oldest_seconds",
			"How long ago the oldest expired lease of the queue ran out (0 without orphans).",
			[]string{"queue"}, nil),
	}
}

func (c *orphanCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.count
	ch <- c.oldest
}

func (c *orphanCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), orphanScrapeTimeout)
	defer cancel()
	got, err := c.orphaned(ctx)
	if err != nil {
		// Debug: a scrape every few seconds during an outage must not
		// flood the logs; the series' absence is the signal.
		c.log.Debug("orphaned tasks not exported", slog.Any("err", err))
		return
	}
	for _, o := range got {
		ch <- prometheus.MustNewConstMetric(c.count, prometheus.GaugeValue, float64(o.Count), o.Queue)
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, o.Oldest.Seconds(), o.Queue)
	}
}

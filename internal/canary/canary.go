// Package canary probes the whole task path end to end: every interval
// one tiny canary:ping task per queue is submitted through the task store,
// exactly as users' tasks are, and its completion is timed and recorded.
//
// Every worker replica runs a Prober. Ticks are aligned to the Unix epoch
// and each tick's task has the ID canary:<queue>:<unix>, the mechanism of
// periodic tasks: Redis accepts the first replica's enqueue of a tick and
// refuses the others', so one canary per queue and tick runs whatever the
// replica count.
package canary

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"taskstack/internal/store"
	"taskstack/internal/tasks"
)

// DefaultInterval is CANARY_INTERVAL's default.
const DefaultInterval = 15 * time.Second

// Outcomes of one tick on one queue, the outcome label of
// taskstack_canary_probes_total.
const (
	OutcomeEnqueued  = "enqueued"  // this replica enqueued the tick's canary
	OutcomeDuplicate = "duplicate" // another replica had
	OutcomeError     = "error"     // the enqueue failed (the tick is skipped)
)

// Store is what the prober needs of the task store.
type Store interface {
	Enqueue(ctx context.Context, p tasks.Prepared) (store.Enqueued, error)
}

// Options build a Prober.
type Options struct {
	Store     Store
	Catalogue *tasks.Catalogue
	Queues    []string
	// Interval between ticks (DefaultInterval when zero).
	Interval time.Duration
	// Now is the clock (time.Now when nil).
	Now      func() time.Time
	Logger   *slog.Logger
	Registry prometheus.Registerer
}

// Prober submits the canaries.
type Prober struct {
	o      Options
	probes *prometheus.CounterVec
	// failing is set while enqueues fail, so an outage is logged once.
	failing bool
}

// TaskID is the ID of queue's canary for tick.
func TaskID(queue string, tick time.Time) string {
	return "canary:" + queue + ":" + strconv.FormatInt(tick.Unix(), 10)
}

// Retention is how long a completed canary is kept: long enough that a
// replica whose clock runs a little behind is still refused its tick,
// short enough that canaries never pile up in Redis.
func Retention(interval time.Duration) time.Duration { return max(2*interval, 30*time.Second) }

// NewProber returns a prober; Run starts it.
func NewProber(o Options) (*Prober, error) {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	p := &Prober{o: o, probes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "taskstack_canary_probes_total",
		Help: "Canary ticks by queue and outcome: enqueued (by this replica), duplicate (another replica enqueued it), error.",
	}, []string{"queue", "outcome"})}
	if err := o.Registry.Register(p.probes); err != nil {
		return nil, fmt.Errorf("canary metrics: %w", err)
	}
	for _, q := range o.Queues {
		for _, out := range []string{OutcomeEnqueued, OutcomeDuplicate, OutcomeError} {
			p.probes.WithLabelValues(q, out)
		}
	}
	return p, nil
}

// Run submits one canary per queue at every tick until ctx is done.
func (p *Prober) Run(ctx context.Context) error {
	p.o.Logger.InfoContext(ctx, "canary running", slog.Duration("interval", p.o.Interval), slog.Any("queues", p.o.Queues))
	for {
		now := p.o.Now()
		next := now.Truncate(p.o.Interval).Add(p.o.Interval)
		t := time.NewTimer(next.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		p.Tick(ctx, next)
	}
}

// Tick submits the canaries of tick.
func (p *Prober) Tick(ctx context.Context, tick time.Time) {
	var failed error
	for _, q := range p.o.Queues {
		if err := p.submit(ctx, q, tick); err != nil && ctx.Err() == nil {
			failed = err
		}
	}
	switch {
	case failed != nil && !p.failing:
		p.failing = true
		p.o.Logger.WarnContext(ctx, "canary not enqueued", slog.Any("err", failed))
	case failed == nil && p.failing:
		p.failing = false
		p.o.Logger.InfoContext(ctx, "canary enqueued again")
	}
}

func (p *Prober) submit(ctx context.Context, queue string, tick time.Time) error {
	prep, err := p.o.Catalogue.Prepare(tasks.Request{
		Type: tasks.TypeCanary, Queue: queue, ID: TaskID(queue, tick),
		Retention: Retention(p.o.Interval), Internal: true,
	})
	if err != nil {
		return fmt.Errorf("canary on %s: %w", queue, err)
	}
	// An enqueue later than the next tick is pointless.
	ctx, cancel := context.WithTimeout(ctx, p.o.Interval)
	defer cancel()
	_, err = p.o.Store.Enqueue(ctx, prep)
	switch {
	case err == nil:
		p.probes.WithLabelValues(queue, OutcomeEnqueued).Inc()
		return nil
	case errors.Is(err, asynq.ErrTaskIDConflict):
		p.probes.WithLabelValues(queue, OutcomeDuplicate).Inc()
		return nil
	default:
		p.probes.WithLabelValues(queue, OutcomeError).Inc()
		return err
	}
}

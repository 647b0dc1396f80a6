package worker

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"taskstack/internal/store"
)

// BacklogReader reads what waits on the queues (the task store answers it).
type BacklogReader interface {
	Backlog(ctx context.Context, queues []string) (store.Backlog, error)
}

// Autoscale makes the number of dequeue loops follow the queues'
// backlog (WORKER_SERVERS=auto): one loop while they are short, more, up
// to Max, when tasks pile up, and one fewer each time they have stayed
// quiet for Quiet.
//
// asynq's dequeue loop is serial (one Server fetches one task at a time),
// so a single loop caps a process's throughput however many slots it has;
// but every loop polls Redis while idle, so a fixed second loop doubles
// the idle load. Scaling on demand gets both (docs/benchmarks.md).
type Autoscale struct {
	// Max bounds the loops (at least 1).
	Max int
	// Backlog reads the pending tasks and the age of the oldest, at most
	// once per Interval.
	Backlog BacklogReader
	// Interval between two readings; 1 s when zero.
	Interval time.Duration
	// PerLoop: the loops wanted are the pending tasks divided by PerLoop
	// (1000 when zero), so a large backlog gets every loop at once.
	PerLoop int
	// Latency: when the oldest pending task has waited this long, one more
	// loop (when zero: 250 ms, or 5 × TaskCheckInterval if longer, which is
	// what an idle loop's sleep alone can make a task wait).
	Latency time.Duration
	// Quiet: how long the queues must stay quiet (fewer than PerLoop/10
	// pending, the oldest younger than Latency/10) before one loop is shed;
	// 30 s when zero. The gap between the thresholds to add and to shed is
	// the hysteresis that keeps the count from flapping.
	Quiet time.Duration
}

func (a Autoscale) withDefaults(checkInterval time.Duration) Autoscale {
	a.Max = max(1, a.Max)
	if a.Interval <= 0 {
		a.Interval = time.Second
	}
	if a.PerLoop <= 0 {
		a.PerLoop = 1000
	}
	if a.Latency <= 0 {
		a.Latency = max(250*time.Millisecond, 5*checkInterval)
	}
	if a.Quiet <= 0 {
		a.Quiet = 30 * time.Second
	}
	return a
}

// scaler is the decision, apart from the loops it drives.
type scaler struct {
	a Autoscale
	// quietSince is when the queues became quiet (zero: they are not).
	quietSince time.Time
}

// next is the number of loops wanted after reading b at now, with cur
// running.
func (s *scaler) next(cur int, b store.Backlog, now time.Time) int {
	a := s.a
	byBacklog := (b.Pending + a.PerLoop - 1) / a.PerLoop
	switch {
	case byBacklog > cur || b.Latency >= a.Latency:
		s.quietSince = time.Time{}
		return min(a.Max, max(byBacklog, cur+1))
	case b.Pending*10 < a.PerLoop && b.Latency*10 < a.Latency:
		if s.quietSince.IsZero() {
			s.quietSince = now
			return cur
		}
		if cur > 1 && now.Sub(s.quietSince) >= a.Quiet {
			s.quietSince = now // the next one after another quiet period
			return cur - 1
		}
		return cur
	}
	s.quietSince = time.Time{}
	return cur
}

// loops are the asynq Servers of one process.
type loops struct {
	newServer func() *asynq.Server
	handler   asynq.Handler
	gauge     prometheus.Gauge
	// stopping is closed when the worker shuts down: loops still draining
	// after a shed then get asynq's shutdown, with its timeout.
	stopping  chan struct{}
	closeOnce sync.Once

	mu      sync.Mutex
	running []*loop
	// shedding counts loops shed and still finishing their tasks.
	shedding sync.WaitGroup
}

// loop is one asynq Server and the tasks it runs now.
type loop struct {
	srv      *asynq.Server
	inFlight atomic.Int64
}

// run counts the task in flight while next runs it.
func (lp *loop) run(ctx context.Context, t *asynq.Task, next asynq.Handler) error {
	lp.inFlight.Add(1)
	defer lp.inFlight.Add(-1)
	return next.ProcessTask(ctx, t)
}

func newLoopsGauge(reg prometheus.Registerer) (prometheus.Gauge, error) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "taskstack_worker_dequeue_loops",
		Help: "asynq dequeue loops (Servers) running in this worker process: WORKER_SERVERS, or with auto what the backlog asks for.",
	})
	if err := reg.Register(g); err != nil {
		return nil, fmt.Errorf("worker metrics: %w", err)
	}
	return g, nil
}

func (l *loops) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.running)
}

// scale starts or sheds loops until n run. A loop that does not start
// (Redis away) is an error; the ones already running stay.
func (l *loops) scale(n int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer func() { l.gauge.Set(float64(len(l.running))) }()
	for len(l.running) < n {
		lp := &loop{srv: l.newServer()}
		next := l.handler
		if err := lp.srv.Start(asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			return lp.run(ctx, t, next)
		})); err != nil {
			return fmt.Errorf("start asynq server: %w", err)
		}
		l.running = append(l.running, lp)
	}
	for len(l.running) > n {
		lp := l.running[len(l.running)-1]
		l.running = l.running[:len(l.running)-1]
		lp.srv.Stop() // fetch no more at once
		l.shedding.Go(func() { l.drain(lp) })
	}
	return nil
}

// drain waits for a shed loop's tasks, however long they run (asynq's
// Shutdown would put back on the queue those still running after
// ShutdownTimeout, to run again elsewhere), then shuts it down. When the
// worker shuts down first, asynq's shutdown and its timeout apply.
func (l *loops) drain(lp *loop) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		// A tick first: a task fetched just before Stop may not have
		// reached its handler yet.
		select {
		case <-l.stopping:
			lp.srv.Shutdown()
			return
		case <-t.C:
		}
		if lp.inFlight.Load() == 0 {
			lp.srv.Shutdown()
			return
		}
	}
}

// shutdown stops fetching on every loop first, then waits for all of them,
// those shed before included, to finish their tasks.
func (l *loops) shutdown() {
	l.closeOnce.Do(func() { close(l.stopping) })
	l.mu.Lock()
	running := l.running
	l.running = nil
	l.mu.Unlock()
	for _, lp := range running {
		lp.srv.Stop()
	}
	var wg sync.WaitGroup
	for _, lp := range running {
		wg.Go(lp.srv.Shutdown)
	}
	wg.Wait()
	l.shedding.Wait()
	l.gauge.Set(0)
}

// autoscale reads the backlog every Interval and scales the loops until ctx
// is done.
func (w *Worker) autoscale(ctx context.Context, sc *scaler, queues []string) {
	t := time.NewTicker(sc.a.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.rescale(ctx, sc, queues)
	}
}

// rescale reads the backlog once and applies the decision.
func (w *Worker) rescale(ctx context.Context, sc *scaler, queues []string) {
	rctx, cancel := context.WithTimeout(ctx, sc.a.Interval)
	b, err := sc.a.Backlog.Backlog(rctx, queues)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			w.log.DebugContext(ctx, "backlog reading failed; loops unchanged", slog.Any("err", err))
		}
		return
	}
	cur := w.loops.count()
	n := sc.next(cur, b, time.Now())
	if n == cur {
		return
	}
	if err := w.loops.scale(n); err != nil {
		w.log.WarnContext(ctx, "dequeue loops not added", slog.Any("err", err))
		return
	}
	w.log.InfoContext(ctx, "dequeue loops", slog.Int("from", cur), slog.Int("to", n),
		slog.Int("pending", b.Pending), slog.Duration("latency", b.Latency))
}

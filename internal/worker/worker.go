package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"taskstack/internal/telemetry"
)

// Catalogue is what the worker needs of the task catalogue: the handlers
// and the type names that bound the metrics' labels.
type Catalogue interface {
	Register(mux *asynq.ServeMux)
	Types() []string
}

// CancelChecker tells whether a task was cancelled on request (the task
// store answers it).
type CancelChecker interface {
	CancelRequested(ctx context.Context, queue, id string) (bool, error)
}

// Options build a Worker.
type Options struct {
	// Redis is the client asynq's servers poll; the caller owns it.
	Redis     redis.UniversalClient
	Catalogue Catalogue
	// Cancels, when set, keeps tasks cancelled through the API from being
	// retried.
	Cancels CancelChecker
	// Attempts, when set, keeps each task's attempts (start, end, error),
	// written in batches off the tasks' path.
	Attempts AttemptStore

	// Queues maps queue names to weights.
	Queues         map[string]int
	StrictPriority bool
	// Concurrency is the number of tasks one dequeue loop runs at once.
	Concurrency int
	// Servers is the number of asynq dequeue loops (at least 1), unless
	// Autoscale is set.
	Servers int
	// Autoscale, when set, runs between 1 and Autoscale.Max loops as the
	// backlog asks (WORKER_SERVERS=auto); Servers is then ignored.
	Autoscale *Autoscale
	// ShutdownTimeout is how long in-flight tasks get on shutdown before
	// asynq puts them back on their queue.
	ShutdownTimeout time.Duration
	// TaskCheckInterval is how long an idle loop sleeps between polls.
	TaskCheckInterval time.Duration
	// RetryDelay, when set, replaces asynq's exponential back-off for
	// failed tasks.
	RetryDelay asynq.RetryDelayFunc

	// Crash recovery. A running task holds a 30 s lease that its worker
	// renews every 5 s; when the worker dies the lease runs out, and a
	// recoverer (every live worker runs one) retries the task once the lease
	// has been expired for LeaseExpiryMargin, checking every
	// RecoveryInterval. The retry then waits LeaseExpiredRetryDelay and is
	// moved back to its queue within ForwardInterval. Recovery after a crash
	// thus takes at most 30 s + LeaseExpiryMargin + RecoveryInterval +
	// LeaseExpiredRetryDelay + ForwardInterval. Zero intervals and margin
	// mean asynq's defaults (1 min, 30 s, 5 s).
	RecoveryInterval time.Duration
	// LeaseExpiryMargin is the allowance for clock skew between worker
	// hosts: a lease set by one host's clock is judged expired by another's.
	// It must exceed the largest skew, or a worker cut off from Redis may
	// still be running a task when another worker starts it again.
	LeaseExpiryMargin time.Duration
	// LeaseExpiredRetryDelay is the retry delay of a task whose worker died
	// (asynq.ErrLeaseExpired); other failures keep RetryDelay's back-off.
	LeaseExpiredRetryDelay time.Duration
	// ForwardInterval is how often due retries and scheduled tasks are
	// moved to their queue.
	ForwardInterval time.Duration

	Logger     *slog.Logger
	Registry   prometheus.Registerer
	Tracer     trace.TracerProvider
	Propagator propagation.TextMapPropagator
}

// Worker is one process's asynq servers.
type Worker struct {
	o     Options
	log   *slog.Logger
	loops *loops
	mux   *asynq.ServeMux
	// attempts is nil without Options.Attempts.
	attempts *attemptLog
	// scaler and queues are set with Options.Autoscale; stop ends the
	// autoscaling goroutine and scaled says it has.
	scaler *scaler
	queues []string
	stop   context.CancelFunc
	scaled chan struct{}
}

// New builds the servers; nothing runs until Run or Start.
func New(o Options) (*Worker, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if len(o.Queues) == 0 {
		return nil, fmt.Errorf("worker: no queues")
	}
	queues := make([]string, 0, len(o.Queues))
	for q := range o.Queues {
		queues = append(queues, q)
	}
	metrics, err := NewMetrics(o.Registry, o.Catalogue.Types(), queues)
	if err != nil {
		return nil, err
	}
	w := &Worker{o: o, log: o.Logger}
	mo := MiddlewareOptions{
		Metrics: metrics, Tracer: o.Tracer, Propagator: o.Propagator, Logger: o.Logger, Cancels: o.Cancels,
	}
	if o.Attempts != nil {
		if w.attempts, err = newAttemptLog(o.Attempts, o.Logger, o.Registry); err != nil {
			return nil, err
		}
		mo.Attempts = w.attempts.add
		mo.Worker, _ = os.Hostname()
	}
	w.mux = asynq.NewServeMux()
	w.mux.Use(Middleware(mo))
	o.Catalogue.Register(w.mux)

	gauge, err := newLoopsGauge(o.Registry)
	if err != nil {
		return nil, err
	}
	if o.Autoscale != nil {
		if o.Autoscale.Backlog == nil {
			return nil, fmt.Errorf("worker: autoscaling needs a backlog reader")
		}
		w.scaler = &scaler{a: o.Autoscale.withDefaults(o.TaskCheckInterval)}
		w.queues = queues
		slices.Sort(w.queues)
	}
	w.loops = &loops{handler: w.mux, gauge: gauge, stopping: make(chan struct{}), newServer: func() *asynq.Server {
		return asynq.NewServerFromRedisClient(o.Redis, asynq.Config{
			Queues:            o.Queues,
			StrictPriority:    o.StrictPriority,
			Concurrency:       o.Concurrency,
			ShutdownTimeout:   o.ShutdownTimeout,
			TaskCheckInterval: o.TaskCheckInterval,
			RetryDelayFunc:    retryDelay(o.RetryDelay, o.LeaseExpiredRetryDelay),
			Logger:            telemetry.AsynqLogger{L: o.Logger},
			LogLevel:          asynqLevel(o.Logger),

			RecovererInterval:        o.RecoveryInterval,
			LeaseExpiryMargin:        o.LeaseExpiryMargin,
			DelayedTaskCheckInterval: o.ForwardInterval,
		})
	}}
	return w, nil
}

// retryDelay is failed's back-off (asynq's default when nil) for failed
// tasks, leaseExpired for tasks whose worker died (those did not fail, and
// a back-off would only add to the time the crash already cost), and none
// for tasks cancelled on request.
func retryDelay(failed asynq.RetryDelayFunc, leaseExpired time.Duration) asynq.RetryDelayFunc {
	if failed == nil {
		failed = asynq.DefaultRetryDelayFunc
	}
	return func(n int, err error, t *asynq.Task) time.Duration {
		switch {
		case errors.Is(err, asynq.ErrLeaseExpired):
			return max(0, leaseExpired)
		case errors.Is(err, context.Canceled):
			// Cancelled through the API (asynq requeues, not retries, the
			// tasks of a worker shutting down): the retry ends the task at
			// once, archived as cancelled, instead of after a back-off.
			return 0
		}
		return failed(n, err, t)
	}
}

// asynqLevel follows the logger's level, but never below info: asynq's debug
// lines include one "All queues are empty" per poll (100 a second).
func asynqLevel(l *slog.Logger) asynq.LogLevel {
	ctx := context.Background()
	switch {
	case l.Enabled(ctx, slog.LevelInfo):
		return asynq.InfoLevel
	case l.Enabled(ctx, slog.LevelWarn):
		return asynq.WarnLevel
	}
	return asynq.ErrorLevel
}

// Start starts the dequeue loops: Servers of them, or with Autoscale as
// many as the backlog read now asks for, and then the goroutine that
// adjusts them.
func (w *Worker) Start() error {
	if w.attempts != nil {
		go w.attempts.run()
	}
	n := max(1, w.o.Servers)
	if w.scaler != nil {
		n = 1
		ctx, cancel := context.WithTimeout(context.Background(), w.scaler.a.Interval)
		if b, err := w.scaler.a.Backlog.Backlog(ctx, w.queues); err == nil {
			n = w.scaler.next(1, b, time.Now())
		}
		cancel()
	}
	if err := w.loops.scale(n); err != nil {
		w.loops.shutdown()
		if w.attempts != nil {
			w.attempts.close()
		}
		return err
	}
	servers := slog.Int("servers", n)
	if w.scaler != nil {
		servers = slog.String("servers", fmt.Sprintf("auto (1 to %d, %d now)", w.scaler.a.Max, n))
		ctx, stop := context.WithCancel(context.Background())
		w.stop, w.scaled = stop, make(chan struct{})
		go func() {
			defer close(w.scaled)
			w.autoscale(ctx, w.scaler, w.queues)
		}()
	}
	w.log.Info("worker started", slog.Any("queues", w.o.Queues), slog.Bool("strict_priority", w.o.StrictPriority),
		slog.Int("concurrency", w.o.Concurrency), servers,
		slog.Duration("task_check_interval", w.o.TaskCheckInterval),
		slog.Duration("recovery_interval", w.o.RecoveryInterval), slog.Duration("lease_expiry_margin", w.o.LeaseExpiryMargin))
	return nil
}

// Loops is the number of dequeue loops running now.
func (w *Worker) Loops() int { return w.loops.count() }

// Shutdown stops fetching on every loop, waits up to ShutdownTimeout for
// in-flight tasks (those of loops shed earlier included), and lets asynq
// put the unfinished ones back on their queue.
func (w *Worker) Shutdown() {
	if w.stop != nil {
		w.stop()
		<-w.scaled // no loop is added or shed from here on
	}
	w.loops.shutdown()
	if w.attempts != nil {
		w.attempts.close()
	}
}

// Run starts the dequeue loops and blocks until ctx is done, then drains.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	w.log.Info("shutting down: no new tasks; waiting for in-flight ones", slog.Duration("timeout", w.o.ShutdownTimeout))
	w.Shutdown()
	w.log.Info("worker stopped")
	return nil
}

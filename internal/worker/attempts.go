package worker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"taskstack/internal/store"
)

// AttemptStore keeps tasks' attempt histories (the task store).
type AttemptStore interface {
	RecordAttempts(ctx context.Context, as []store.Attempt) error
}

// Bounds of the attempt log.
const (
	// attemptBuffer is how many attempts wait for their write; past it
	// new ones are dropped (and counted) rather than slowing tasks down.
	attemptBuffer = 8192
	// attemptBatch is the most attempts written in one round trip.
	attemptBatch = 512
	// attemptWriteTimeout bounds one write.
	attemptWriteTimeout = 5 * time.Second
	// attemptLinger is how long a write waits for more attempts once it
	// has one: under load a batch per 20 ms instead of a round trip per
	// few tasks (the writes were a tenth of the worker's CPU, most of it
	// in write system calls); a task's history shows it that much later.
	attemptLinger = 20 * time.Millisecond
)

// attemptLog writes attempts to the store off the tasks' path: the
// middleware hands each over without waiting, and one goroutine writes
// what gathers within attemptLinger in one pipelined round trip.
type attemptLog struct {
	store   AttemptStore
	log     *slog.Logger
	ch      chan store.Attempt
	dropped prometheus.Counter
	done    chan struct{}
	// mu guards closed: a handler that outlived the shutdown timeout may
	// still hand over its attempt after close.
	mu     sync.RWMutex
	closed bool
}

func newAttemptLog(st AttemptStore, log *slog.Logger, reg prometheus.Registerer) (*attemptLog, error) {
	l := &attemptLog{
		store: st, log: log, ch: make(chan store.Attempt, attemptBuffer), done: make(chan struct{}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "taskstack_task_attempts_dropped_total",
			Help: "Attempt records not written to a task's history (the write buffer was full, or Redis refused the write); the tasks themselves are unaffected.",
		}),
	}
	if err := reg.Register(l.dropped); err != nil {
		return nil, err
	}
	return l, nil
}

// add hands an attempt over; it never blocks.
func (l *attemptLog) add(a store.Attempt) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.dropped.Inc()
		return
	}
	select {
	case l.ch <- a:
	default:
		l.dropped.Inc()
	}
}

// run writes until close, then writes what is left.
func (l *attemptLog) run() {
	defer close(l.done)
	batch := make([]store.Attempt, 0, attemptBatch)
	failing := false
	linger := time.NewTimer(attemptLinger)
	defer linger.Stop()
	for a := range l.ch {
		batch = append(batch[:0], a)
		linger.Reset(attemptLinger)
	gather:
		for len(batch) < attemptBatch {
			select {
			case more, ok := <-l.ch:
				if !ok {
					break gather // closing: write what there is now
				}
				batch = append(batch, more)
			case <-linger.C:
				break gather
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), attemptWriteTimeout)
		err := l.store.RecordAttempts(ctx, batch)
		cancel()
		switch {
		case err != nil:
			l.dropped.Add(float64(len(batch)))
			if !failing {
				l.log.Warn("task attempts not recorded", slog.Int("attempts", len(batch)), slog.Any("err", err))
			}
			failing = true
		case failing:
			failing = false
			l.log.Info("task attempts recorded again")
		}
	}
}

// close stops taking attempts and waits for the last write.
func (l *attemptLog) close() {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.ch)
	}
	l.mu.Unlock()
	<-l.done
}

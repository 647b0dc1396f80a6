package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Options build a Store.
type Options struct {
	// Redis is the client every operation uses; the caller owns it.
	Redis redis.UniversalClient
	// Retention is how long completed tasks, idempotency claims and cancel
	// marks are kept.
	Retention time.Duration
	// Tracer and Propagator make the producer span of an enqueue and carry
	// its context into the task's headers (no-op and TraceContext when nil).
	Tracer     trace.TracerProvider
	Propagator propagation.TextMapPropagator
	Logger     *slog.Logger
	// Queues are the queues this deployment runs, highest priority first.
	Queues []string
	// MaxPending caps each queue's pending tasks (0: no cap), and
	// MaxMemory refuses submissions when Redis's used_memory is at least
	// this fraction of its maxmemory (0: never); both are checked against
	// what Watch last read.
	MaxPending int
	MaxMemory  float64
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Store is the task store. It is safe for concurrent use.
type Store struct {
	rc        redis.UniversalClient
	client    *asynq.Client
	retention time.Duration
	tracer    trace.Tracer
	prop      propagation.TextMapPropagator
	log       *slog.Logger
	queues    []string
	now       func() time.Time

	maxPending int
	maxMemory  float64
	cap        capacity
}

// New returns a store on o.Redis. Nothing is sent to Redis yet.
func New(o Options) *Store {
	if o.Tracer == nil {
		o.Tracer = noop.NewTracerProvider()
	}
	if o.Propagator == nil {
		o.Propagator = propagation.TraceContext{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Store{
		rc:        o.Redis,
		client:    asynq.NewClientFromRedisClient(o.Redis),
		retention: o.Retention,
		tracer:    o.Tracer.Tracer("taskstack/internal/store"),
		prop:      o.Propagator,
		log:       o.Logger,
		queues:    o.Queues,
		now:       o.Now,

		maxPending: o.MaxPending,
		maxMemory:  o.MaxMemory,
	}
}

// Ping checks that Redis answers within timeout.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := s.rc.Ping(ctx).Err(); err != nil {
		return s.wrap("redis ping", err)
	}
	return nil
}

// Errors the store returns; callers compare with errors.Is. Their text is
// written for the client that caused them.
var (
	// ErrUnavailable wraps every error that means Redis could not be
	// reached, did not answer in time, or refused writes for now.
	ErrUnavailable = errors.New("the task store (Redis) is unavailable; try again shortly")
	// ErrNotFound: no such task in that queue (or no longer kept).
	ErrNotFound = errors.New("no such task")
)

// wrap names the operation and marks Redis outages with ErrUnavailable.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if s.sawOOM(err) {
		return fmt.Errorf("%s: %w: %w", op, ErrRedisFull, err)
	}
	if unavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// unavailable reports whether err means Redis could not be reached, did
// not answer in time, or is refusing commands for a while (loading,
// failing over, read-only replica, wrong credentials).
func unavailable(err error) bool {
	var netErr net.Error
	var errno syscall.Errno
	switch {
	case errors.As(err, &netErr), errors.As(err, &errno),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, redis.ErrClosed),
		errors.Is(err, redis.ErrPoolTimeout):
		return true
	}
	msg := err.Error()
	for _, s := range []string{"connection refused", "i/o timeout", "LOADING", "MASTERDOWN", "READONLY", "connection reset", "broken pipe", "NOAUTH", "WRONGPASS", "CLUSTERDOWN", "TRYAGAIN"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

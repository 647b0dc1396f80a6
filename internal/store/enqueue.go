package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"taskstack/internal/tasks"
)

// MessagingSystem is the messaging.system attribute of our spans.
const MessagingSystem = "asynq"

// Enqueued is a task that is on its queue.
type Enqueued struct {
	ID    string
	Queue string
	Type  string
	State string
	// Replayed is set when an idempotency key returned a task enqueued
	// earlier instead of enqueuing a new one.
	Replayed bool
}

// Enqueue puts a validated task on its queue inside a PRODUCER span
// ("send <queue>") whose context, with the enqueue time, goes into the
// task's headers. A task with p.ID set is refused by Redis when one with
// that ID exists (asynq.ErrTaskIDConflict, wrapped).
func (s *Store) Enqueue(ctx context.Context, p tasks.Prepared) (Enqueued, error) {
	if err := s.admit(p.Queue, 1); err != nil {
		return Enqueued{}, err
	}
	ctx, span := s.startProducer(ctx, p)
	defer span.End()

	now := s.now()
	headers := map[string]string{tasks.HeaderEnqueuedAt: strconv.FormatInt(now.UnixNano(), 10)}
	if p.ProcessIn > 0 {
		headers[tasks.HeaderDueAt] = strconv.FormatInt(now.Add(p.ProcessIn).UnixNano(), 10)
	}
	s.prop.Inject(ctx, propagation.MapCarrier(headers))
	opts := []asynq.Option{
		asynq.Queue(p.Queue),
		asynq.Timeout(p.Timeout),
		asynq.MaxRetry(p.MaxRetry),
		asynq.Retention(s.retention),
	}
	if p.Retention > 0 {
		opts[len(opts)-1] = asynq.Retention(p.Retention)
	}
	if p.ProcessIn > 0 {
		opts = append(opts, asynq.ProcessIn(p.ProcessIn))
	}
	if p.ID != "" {
		opts = append(opts, asynq.TaskID(p.ID))
	}
	info, err := s.client.EnqueueContext(ctx, asynq.NewTaskWithHeaders(p.Type, p.Payload, headers, opts...))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "enqueue failed")
		span.SetAttributes(semconv.ErrorTypeKey.String(fmt.Sprintf("%T", err)))
		return Enqueued{}, s.wrap(fmt.Sprintf("enqueue %s on %s", p.Type, p.Queue), err)
	}
	span.SetAttributes(semconv.MessagingMessageID(info.ID))
	return Enqueued{ID: info.ID, Queue: info.Queue, Type: info.Type, State: stateName(info.State)}, nil
}

// startProducer starts the PRODUCER span "send <queue>". Under a parent
// that was not sampled (90% of requests at 10% sampling) it starts none:
// the span would not be sampled either, and its attributes and IDs cost
// every request. The parent's context then goes into the task's headers
// (flags 00), so the worker does not sample the task either.
func (s *Store) startProducer(ctx context.Context, p tasks.Prepared) (context.Context, trace.Span) {
	if parent := trace.SpanFromContext(ctx); !parent.IsRecording() {
		if sc := parent.SpanContext(); sc.IsValid() && !sc.IsSampled() {
			return ctx, noop.Span{}
		}
	}
	return s.tracer.Start(ctx, "send "+p.Queue,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			semconv.MessagingSystemKey.String(MessagingSystem),
			semconv.MessagingOperationName("send"),
			semconv.MessagingOperationTypeSend,
			semconv.MessagingDestinationName(p.Queue),
			attribute.String("taskstack.task.type", p.Type),
		))
}

// Idempotency errors, worded for the client.
var (
	ErrKeyTooLong  = fmt.Errorf("Idempotency-Key must be at most %d characters", MaxIdempotencyKey)
	ErrKeyReused   = errors.New("this Idempotency-Key was already used with a different request")
	ErrKeyExpiring = errors.New("a request with this Idempotency-Key expired just now; retry it")
	ErrKeyTaskGone = errors.New("the task created with this Idempotency-Key is no longer kept (deleted, or past its retention)")
)

// MaxIdempotencyKey bounds an idempotency key's length.
const MaxIdempotencyKey = 255

// claim is stored under an idempotency key while it is remembered.
type claim struct {
	Hash  string `json:"body_hash"`
	ID    string `json:"id"`
	Queue string `json:"queue"`
	Type  string `json:"type"`
	// Enqueued is set once the task is known to be in Redis.
	Enqueued bool `json:"enqueued,omitempty"`
}

func idempotencyKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "taskstack:idempotency:" + hex.EncodeToString(sum[:])
}

// EnqueueOnce enqueues at most one task per idempotency key. The key is
// claimed with SET NX before enqueuing, so two concurrent requests with one
// key cannot both enqueue, and the task ID is fixed in the claim: if the
// enqueue fails (or the process dies before it), the client's retry
// enqueues with that same ID, which asynq refuses to duplicate. A second
// call with the same key and the same task returns the first task with
// Replayed set; with another task it is ErrKeyReused. Keys are remembered
// as long as completed tasks are retained (at least a day).
func (s *Store) EnqueueOnce(ctx context.Context, key string, p tasks.Prepared) (Enqueued, error) {
	if len(key) > MaxIdempotencyKey {
		return Enqueued{}, ErrKeyTooLong
	}
	rkey := idempotencyKey(key)
	c := claim{Hash: preparedHash(p), ID: uuid.NewString(), Queue: p.Queue, Type: p.Type}
	raw, _ := json.Marshal(c)
	claimed, err := s.rc.SetNX(ctx, rkey, raw, max(s.retention, 24*time.Hour)).Result()
	if err != nil {
		return Enqueued{}, s.wrap("claim idempotency key", err)
	}
	if !claimed {
		return s.replay(ctx, rkey, c.Hash, p)
	}
	return s.enqueueClaimed(ctx, rkey, c, p)
}

// enqueueClaimed enqueues the claimed task under its fixed ID and records
// that it was enqueued.
func (s *Store) enqueueClaimed(ctx context.Context, rkey string, c claim, p tasks.Prepared) (Enqueued, error) {
	p.ID = c.ID
	e, err := s.Enqueue(ctx, p)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		// A concurrent retry enqueued it first: the same task.
		return s.recorded(ctx, c), nil
	}
	if err != nil {
		return Enqueued{}, err // the claim stays: a retry enqueues under the same ID
	}
	c.Enqueued = true
	raw, _ := json.Marshal(c)
	_ = s.rc.SetArgs(context.WithoutCancel(ctx), rkey, raw, redis.SetArgs{Mode: "XX", KeepTTL: true}).Err()
	return e, nil
}

func (s *Store) recorded(ctx context.Context, c claim) Enqueued {
	e := Enqueued{ID: c.ID, Queue: c.Queue, Type: c.Type, State: "pending", Replayed: true}
	if t, err := s.Task(ctx, c.Queue, c.ID); err == nil {
		e.State = t.State
	}
	return e
}

func (s *Store) replay(ctx context.Context, rkey, hash string, p tasks.Prepared) (Enqueued, error) {
	raw, err := s.rc.Get(ctx, rkey).Bytes()
	if errors.Is(err, redis.Nil) {
		return Enqueued{}, ErrKeyExpiring
	}
	if err != nil {
		return Enqueued{}, s.wrap("read idempotency key", err)
	}
	var c claim
	if err := json.Unmarshal(raw, &c); err != nil {
		return Enqueued{}, fmt.Errorf("decode idempotency claim: %w", err)
	}
	if c.Hash != hash {
		return Enqueued{}, ErrKeyReused
	}
	t, err := s.Task(ctx, c.Queue, c.ID)
	switch {
	case err == nil:
		return Enqueued{ID: c.ID, Queue: c.Queue, Type: c.Type, State: t.State, Replayed: true}, nil
	case !errors.Is(err, ErrNotFound):
		return Enqueued{}, err
	case c.Enqueued:
		return Enqueued{}, ErrKeyTaskGone
	}
	// Claimed but never enqueued (the first attempt failed or is still in
	// flight): enqueue it now under the claimed ID.
	return s.enqueueClaimed(ctx, rkey, c, p)
}

// preparedHash identifies a task request after its defaults are resolved,
// so that formatting, key order and spelled-out defaults do not matter but
// every value does.
func preparedHash(p tasks.Prepared) string {
	canon, _ := json.Marshal(struct {
		Type      string          `json:"type"`
		Payload   json.RawMessage `json:"payload"`
		Queue     string          `json:"queue"`
		ProcessIn time.Duration   `json:"process_in"`
		MaxRetry  int             `json:"max_retry"`
		Timeout   time.Duration   `json:"timeout"`
	}{p.Type, p.Payload, p.Queue, p.ProcessIn, p.MaxRetry, p.Timeout})
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:])
}

func stateName(s asynq.TaskState) string {
	if s == asynq.TaskStateAggregating {
		return "aggregating"
	}
	return s.String()
}

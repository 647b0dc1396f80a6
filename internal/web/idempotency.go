package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"taskstack/internal/tasks"
)

// idempotencyRecord is stored under the key while it is remembered.
type idempotencyRecord struct {
	BodyHash string `json:"body_hash"`
	ID       string `json:"id"`
	Queue    string `json:"queue"`
	Type     string `json:"type"`
	// Enqueued is set once the task is known to be in Redis.
	Enqueued bool `json:"enqueued,omitempty"`
}

const maxIdempotencyKey = 255

func idempotencyRedisKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "taskstack:idempotency:" + hex.EncodeToString(sum[:])
}

// createIdempotent enqueues at most one task per Idempotency-Key. The key is
// claimed with SET NX before enqueuing, so two concurrent requests with one
// key cannot both enqueue, and the task ID is fixed in the claim: if the
// enqueue fails (or the app dies before it), the client's retry enqueues
// with that same ID, which asynq refuses to duplicate. Keys are remembered
// as long as completed tasks are retained (at least a day).
func (s *Server) createIdempotent(ctx context.Context, w http.ResponseWriter, key string, body createTaskRequest, p tasks.Prepared) error {
	if len(key) > maxIdempotencyKey {
		return newProblem(http.StatusBadRequest, fmt.Sprintf("Idempotency-Key must be at most %d characters", maxIdempotencyKey))
	}
	hash, err := bodyHash(body)
	if err != nil {
		return err
	}
	rkey := idempotencyRedisKey(key)
	rec := idempotencyRecord{BodyHash: hash, ID: uuid.NewString(), Queue: p.Queue, Type: p.Spec.Type}
	recJSON, _ := json.Marshal(rec)
	ttl := max(s.retention, 24*time.Hour)

	claimed, err := s.redis.SetNX(ctx, rkey, recJSON, ttl).Result()
	if err != nil {
		s.countEnqueue(p.Spec.Type, p.Queue, err)
		return fmt.Errorf("claim idempotency key: %w", err)
	}
	if !claimed {
		return s.replayIdempotent(ctx, w, rkey, hash, p)
	}
	return s.enqueueClaimed(ctx, w, rkey, rec, p, http.StatusAccepted)
}

// enqueueClaimed enqueues the claimed task under its fixed ID and records
// that it was enqueued.
func (s *Server) enqueueClaimed(ctx context.Context, w http.ResponseWriter, rkey string, rec idempotencyRecord, p tasks.Prepared, status int) error {
	p.Options = append(p.Options, asynq.TaskID(rec.ID))
	info, err := s.enq.EnqueuePrepared(ctx, p)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		// A concurrent retry enqueued it first: the same task.
		return s.writeRecorded(w, rec, http.StatusOK)
	}
	s.countEnqueue(p.Spec.Type, p.Queue, err)
	if err != nil {
		// The claim stays: a retry enqueues under the same ID.
		return err
	}
	rec.Enqueued = true
	recJSON, _ := json.Marshal(rec)
	_ = s.redis.SetArgs(context.WithoutCancel(ctx), rkey, recJSON, redis.SetArgs{Mode: "XX", KeepTTL: true}).Err()
	return writeCreated(w, status, info.ID, info.Queue, info.Type, stateName(info.State))
}

func (s *Server) writeRecorded(w http.ResponseWriter, rec idempotencyRecord, status int) error {
	state := "pending"
	if ti, err := s.taskInfo(rec.Queue, rec.ID); err == nil {
		state = stateName(ti.State)
	}
	return writeCreated(w, status, rec.ID, rec.Queue, rec.Type, state)
}

func (s *Server) replayIdempotent(ctx context.Context, w http.ResponseWriter, rkey, hash string, p tasks.Prepared) error {
	raw, err := s.redis.Get(ctx, rkey).Bytes()
	if errors.Is(err, redis.Nil) {
		return newProblem(http.StatusConflict, "a request with this Idempotency-Key expired just now; retry it")
	}
	if err != nil {
		return fmt.Errorf("read idempotency key: %w", err)
	}
	var rec idempotencyRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return fmt.Errorf("decode idempotency record: %w", err)
	}
	if rec.BodyHash != hash {
		return newProblem(http.StatusConflict, "this Idempotency-Key was already used with a different request body")
	}
	ti, err := s.taskInfo(rec.Queue, rec.ID)
	switch {
	case err == nil:
		return writeCreated(w, http.StatusOK, rec.ID, rec.Queue, rec.Type, stateName(ti.State))
	case !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound):
		return fmt.Errorf("look up idempotent task: %w", err)
	case rec.Enqueued:
		return newProblem(http.StatusGone, "the task created with this Idempotency-Key is no longer kept (deleted, or past its retention)")
	}
	// Claimed but never enqueued (the first attempt failed or is still in
	// flight): enqueue it now under the claimed ID.
	return s.enqueueClaimed(ctx, w, rkey, rec, p, http.StatusAccepted)
}

// bodyHash hashes the request as decoded, so formatting and key order do
// not matter but every value does.
func bodyHash(b createTaskRequest) (string, error) {
	var payload any
	if len(b.Payload) > 0 {
		if err := json.Unmarshal(b.Payload, &payload); err != nil {
			return "", fmt.Errorf("hash payload: %w", err)
		}
	}
	canon, err := json.Marshal(struct {
		Type      string `json:"type"`
		Payload   any    `json:"payload"`
		Queue     string `json:"queue"`
		ProcessIn string `json:"process_in"`
		MaxRetry  *int   `json:"max_retry"`
		Timeout   string `json:"timeout"`
	}{b.Type, payload, b.Queue, b.ProcessIn, b.MaxRetry, b.Timeout})
	if err != nil {
		return "", fmt.Errorf("hash body: %w", err)
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:]), nil
}

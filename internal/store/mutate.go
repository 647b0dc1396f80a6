package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// cancelChannel is asynq's pub/sub channel for cancelling active tasks.
const cancelChannel = "asynq:cancel"

// cancelKey marks a task cancelled on request, so that the worker does not
// retry it after its context is cancelled. It carries the queue's hash tag,
// so the delete-or-cancel script sets it on the task's own node.
func cancelKey(queue, id string) string { return "taskstack:{" + queue + "}:cancelled:" + id }

// deleteScript is asynq v0.26.0's deleteTaskCmd (MIT licence) without task
// groups, which taskstack does not use, and with one change: an active task
// is not refused but marked cancelled, in the same step, so that a task that
// starts between a look and a delete is still stopped.
//
// KEYS: task key, cancel mark, attempts. ARGV: id, queue key prefix, mark
// TTL (s).
// Returns 1 deleted, 0 not found, -1 active (marked).
var deleteScript = redis.NewScript(`
if redis.call("EXISTS", KEYS[1]) == 0 then
	return 0
end
local state = redis.call("HGET", KEYS[1], "state")
if state == "active" then
	redis.call("SET", KEYS[2], "1", "EX", ARGV[3])
	return -1
end
if state == "aggregating" then
	return redis.error_reply("task is in a group; taskstack does not group tasks")
end
local removed
if state == "pending" then
	removed = redis.call("LREM", ARGV[2] .. state, 0, ARGV[1])
else
	removed = redis.call("ZREM", ARGV[2] .. state, ARGV[1])
end
if removed == 0 then
	return redis.error_reply("task is not in " .. ARGV[2] .. tostring(state))
end
local unique_key = redis.call("HGET", KEYS[1], "unique_key")
if unique_key and unique_key ~= "" and redis.call("GET", unique_key) == ARGV[1] then
	redis.call("DEL", unique_key)
end
redis.call("DEL", KEYS[1], KEYS[3])
return 1
`)

// Deletion is what Delete did.
type Deletion int

// What Delete can do.
const (
	// Deleted: the task had not run (or had finished) and is gone.
	Deleted Deletion = iota + 1
	// CancelRequested: the task is running; it is marked cancelled (so it
	// is not retried) and its worker is asked to cancel its context.
	CancelRequested
)

// Delete deletes a task that is not running and cancels one that is.
// ErrNotFound when there is no such task.
func (s *Store) Delete(ctx context.Context, queue, id string) (Deletion, error) {
	if !slices.Contains(s.queues, queue) {
		return 0, ErrNotFound
	}
	ttl := strconv.Itoa(int(max(s.retention, 24*time.Hour) / time.Second))
	n, err := deleteScript.Run(ctx, s.rc, []string{queuePrefix(queue) + "t:" + id, cancelKey(queue, id), attemptsKey(queue, id)}, id, queuePrefix(queue), ttl).Int()
	if err != nil {
		return 0, s.wrap(fmt.Sprintf("delete task %s/%s", queue, id), err)
	}
	switch n {
	case 1:
		return Deleted, nil
	case 0:
		return 0, ErrNotFound
	}
	// asynq's workers listen on the channel; every one of them checks
	// whether it runs the task.
	if err := s.rc.Publish(ctx, cancelChannel, id).Err(); err != nil {
		return 0, s.wrap(fmt.Sprintf("cancel task %s/%s", queue, id), err)
	}
	return CancelRequested, nil
}

// CancelRequested reports whether the task was cancelled on request.
func (s *Store) CancelRequested(ctx context.Context, queue, id string) (bool, error) {
	n, err := s.rc.Exists(ctx, cancelKey(queue, id)).Result()
	if err != nil {
		return false, s.wrap("read cancel mark", err)
	}
	return n > 0, nil
}

// allQueuesKey is asynq's set of queue names, which its Inspector (and so
// asynqmon and the queue metrics) reads queues from.
const allQueuesKey = "asynq:queues"

// RegisterQueues puts the deployment's queues in asynq's set of queues.
// asynq adds a queue there only the first time a process enqueues to it,
// so an empty queue would be invisible to the dashboard, and after Redis
// lost its data (a restart without persistence, a failover) queues holding
// new tasks would look empty until some process restarts.
func (s *Store) RegisterQueues(ctx context.Context) error {
	members := make([]any, len(s.queues))
	for i, q := range s.queues {
		members[i] = q
	}
	if err := s.rc.SAdd(ctx, allQueuesKey, members...).Err(); err != nil {
		return s.wrap("register queues", err)
	}
	return nil
}

// KeepQueuesRegistered registers the queues now and then checks every
// interval that they still are (one SMISMEMBER), registering them again
// after Redis lost its data. It returns when ctx is done.
func (s *Store) KeepQueuesRegistered(ctx context.Context, interval time.Duration) {
	members := make([]any, len(s.queues))
	for i, q := range s.queues {
		members[i] = q
	}
	check := func() {
		cctx, cancel := context.WithTimeout(ctx, interval)
		defer cancel()
		present, err := s.rc.SMIsMember(cctx, allQueuesKey, members...).Result()
		if err == nil && !slices.Contains(present, false) {
			return
		}
		if err == nil {
			err = s.RegisterQueues(cctx)
			if err == nil {
				s.log.InfoContext(ctx, "queues registered again (Redis lost them)", "queues", s.queues)
				return
			}
		}
		if !errors.Is(err, context.Canceled) {
			s.log.DebugContext(ctx, "queue registration check failed", "err", err)
		}
	}
	check()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			check()
		}
	}
}

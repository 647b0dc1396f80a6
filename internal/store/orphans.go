package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Orphans are one queue's running tasks whose lease ran out: their worker
// died or lost Redis, and no worker has recovered them yet. A worker renews
// the lease (30 s) of each task it runs every 5 s; a live worker's
// recoverer retries an orphan once its lease has been expired for the
// clock-skew margin (docs/reliability.md).
type Orphans struct {
	Queue string
	Count int
	// Oldest is how long ago the oldest lease ran out (0 without orphans).
	Oldest time.Duration
}

// orphansScript counts the leases that ran out before ARGV[1] (Unix
// seconds, as asynq scores them) and returns the earliest expiry. asynq's
// lease set holds one member per active task, scored with the time its
// lease ends (v0.26.0: rdb.Dequeue, rdb.ExtendLease).
//
// KEYS: the queue's lease set. ARGV: now.
var orphansScript = redis.NewScript(`
local n = redis.call("ZCOUNT", KEYS[1], "-inf", "(" .. ARGV[1])
if n == 0 then
	return {0, "0"}
end
local first = redis.call("ZRANGE", KEYS[1], 0, 0, "WITHSCORES")
return {n, first[2]}
`)

// Orphaned reports, for every queue in priority order, its active tasks
// whose lease has expired: one script per queue, in one pipeline.
func (s *Store) Orphaned(ctx context.Context) ([]Orphans, error) {
	now := s.now()
	cmds, err := s.evalPipelined(ctx, orphansScript, len(s.queues), func(i int) ([]string, []any) {
		return []string{queuePrefix(s.queues[i]) + "lease"}, []any{now.Unix()}
	})
	if err != nil {
		return nil, s.wrap("count orphaned tasks", err)
	}
	out := make([]Orphans, len(s.queues))
	for i, cmd := range cmds {
		vals, ok := cmd.Val().([]any)
		if !ok || len(vals) != 2 {
			return nil, fmt.Errorf("count orphaned tasks of %s: unexpected answer %T", s.queues[i], cmd.Val())
		}
		n, _ := vals[0].(int64)
		o := Orphans{Queue: s.queues[i], Count: int(n)}
		if sc, _ := vals[1].(string); n > 0 {
			if f, err := strconv.ParseFloat(sc, 64); err == nil {
				o.Oldest = max(0, now.Sub(time.Unix(int64(f), 0)))
			}
		}
		out[i] = o
	}
	return out, nil
}

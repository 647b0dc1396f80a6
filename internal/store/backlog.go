package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Backlog is what waits on a set of queues: pending tasks and the age of
// the oldest one. Paused queues are left out (more dequeue loops would not
// drain them).
type Backlog struct {
	Pending int
	Latency time.Duration
}

// backlogScript reads one unpaused queue's pending count and the enqueue
// time of its oldest pending task: two to four commands, against the
// hundred or so of asynq's Inspector.GetQueueInfo, which samples memory use.
//
// KEYS: pending, paused. ARGV: task key prefix.
var backlogScript = redis.NewScript(`
if redis.call("EXISTS", KEYS[2]) == 1 then return {0, "0"} end
local n = redis.call("LLEN", KEYS[1])
local since = "0"
if n > 0 then
	local oldest = redis.call("LINDEX", KEYS[1], -1)
	if oldest then
		since = redis.call("HGET", ARGV[1] .. oldest, "pending_since") or "0"
	end
end
return {n, since}
`)

// Backlog reads the backlog of queues in one pipeline: the pending tasks
// summed, and the latency of the queue whose oldest task waited longest.
func (s *Store) Backlog(ctx context.Context, queues []string) (Backlog, error) {
	cmds, err := s.evalPipelined(ctx, backlogScript, len(queues), func(i int) ([]string, []any) {
		p := queuePrefix(queues[i])
		return []string{p + "pending", p + "paused"}, []any{p + "t:"}
	})
	if err != nil {
		return Backlog{}, s.wrap("read backlog", err)
	}
	now := s.now()
	var b Backlog
	for i, cmd := range cmds {
		vals, ok := cmd.Val().([]any)
		if !ok || len(vals) != 2 {
			return Backlog{}, fmt.Errorf("read backlog of %s: unexpected reply %v", queues[i], cmd.Val())
		}
		n, _ := vals[0].(int64)
		b.Pending += int(n)
		since, _ := vals[1].(string)
		if ns, err := strconv.ParseInt(since, 10, 64); err == nil && ns > 0 {
			b.Latency = max(b.Latency, now.Sub(time.Unix(0, ns)))
		}
	}
	return b, nil
}

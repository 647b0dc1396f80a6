package store

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// canaryKey is a hash of the latest canary success per queue (Unix
// milliseconds), written by the workers that complete canaries and read by
// the monitor, which exports it whether or not any worker is up.
const canaryKey = "taskstack:canary"

// recordCanaryScript keeps the later of the stored time and ARGV[2]: two
// workers finishing canaries at once cannot move the time backwards.
// KEYS: canary hash. ARGV: queue, Unix milliseconds.
var recordCanaryScript = redis.NewScript(`
local old = tonumber(redis.call("HGET", KEYS[1], ARGV[1]) or "0")
if tonumber(ARGV[2]) > old then
	redis.call("HSET", KEYS[1], ARGV[1], ARGV[2])
end
return 0
`)

// RecordCanary records a canary's success on queue at at.
func (s *Store) RecordCanary(ctx context.Context, queue string, at time.Time) error {
	err := recordCanaryScript.Run(ctx, s.rc, []string{canaryKey}, queue, at.UnixMilli()).Err()
	return s.wrap("record canary", err)
}

// CanarySuccesses returns the latest canary success of every queue that
// has had one.
func (s *Store) CanarySuccesses(ctx context.Context) (map[string]time.Time, error) {
	raw, err := s.rc.HGetAll(ctx, canaryKey).Result()
	if err != nil {
		return nil, s.wrap("read canary successes", err)
	}
	out := make(map[string]time.Time, len(raw))
	for q, v := range raw {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
			out[q] = time.UnixMilli(ms)
		}
	}
	return out, nil
}

package store

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// evalPipelined runs script n times in one pipeline, call(i) giving the
// i-th run's keys and arguments. A pipeline cannot fall back from EVALSHA
// to EVAL as Script.Run does, so when Redis has lost the script (a
// restart, SCRIPT FLUSH) it is loaded and the pipeline sent once more.
func (s *Store) evalPipelined(ctx context.Context, script *redis.Script, n int, call func(i int) ([]string, []any)) ([]*redis.Cmd, error) {
	run := func() ([]*redis.Cmd, error) {
		pipe := s.rc.Pipeline()
		cmds := make([]*redis.Cmd, n)
		for i := range n {
			keys, args := call(i)
			cmds[i] = script.EvalSha(ctx, pipe, keys, args...)
		}
		_, err := pipe.Exec(ctx)
		return cmds, err
	}
	cmds, err := run()
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		if lerr := script.Load(ctx, s.rc).Err(); lerr != nil {
			return nil, fmt.Errorf("load script: %w", lerr)
		}
		cmds, err = run()
	}
	return cmds, err
}

// queueViewKeys are queueViewScript's keys for the queue with prefix p on
// day (YYYY-MM-DD).
func queueViewKeys(p, day string) []string {
	return []string{p + "pending", p + "active", p + "scheduled", p + "retry", p + "archived", p + "completed",
		p + "processed:" + day, p + "failed:" + day, p + "paused"}
}

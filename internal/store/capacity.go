package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Capacity errors: the queue or Redis can not take more tasks now. Both
// say so in words a client can act on.
var (
	// ErrQueueFull: the queue holds MaxPending pending tasks already.
	ErrQueueFull = errors.New("the queue holds as many pending tasks as it may; retry later")
	// ErrRedisFull: Redis is over its memory headroom, or refused a write
	// for lack of memory (OOM). It wraps ErrUnavailable.
	ErrRedisFull = fmt.Errorf("%w: Redis is nearly out of memory, so new tasks are refused until workers catch up", ErrUnavailable)
)

// capacity is the last reading of Redis's memory and the pending lists,
// refreshed by Watch; submissions are checked against it instead of asking
// Redis on every request.
type capacity struct {
	mu       sync.RWMutex
	watching bool
	memory   float64 // used_memory / maxmemory; 0 without maxmemory
	pending  map[string]int
	oomUntil time.Time // a write was refused (OOM) not long ago
}

func (c *capacity) read() (watching bool, memory float64, pending map[string]int, oom bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.watching, c.memory, c.pending, time.Now().Before(c.oomUntil)
}

// Admit checks a submission of n tasks to queue against the last reading
// of Redis's memory and the queue's pending count (ErrQueueFull,
// ErrRedisFull); Enqueue checks each task itself, Admit lets a batch check
// its items for one queue together.
func (s *Store) Admit(queue string, n int) error { return s.admit(queue, n) }

// admit checks a submission of n tasks to queue against the last reading.
func (s *Store) admit(queue string, n int) error {
	watching, memory, pending, oom := s.cap.read()
	switch {
	case oom:
		return ErrRedisFull
	case !watching:
		return nil
	case s.maxMemory > 0 && memory >= s.maxMemory:
		return ErrRedisFull
	case s.maxPending > 0 && pending[queue]+n > s.maxPending:
		return ErrQueueFull
	}
	return nil
}

// sawOOM records that Redis refused a write for lack of memory.
func (s *Store) sawOOM(err error) bool {
	if err == nil || !strings.Contains(err.Error(), "OOM") {
		return false
	}
	s.cap.mu.Lock()
	s.cap.oomUntil = time.Now().Add(time.Second)
	s.cap.mu.Unlock()
	return true
}

// Watch reads Redis's memory use and every queue's pending count each
// interval (two commands) until ctx is done, so that submissions can be
// refused before Redis is full and queues can be capped.
func (s *Store) Watch(ctx context.Context, interval time.Duration) {
	read := func() {
		rctx, cancel := context.WithTimeout(ctx, interval)
		defer cancel()
		memory, merr := s.memoryUse(rctx)
		pipe := s.rc.Pipeline()
		cmds := make(map[string]*redis.IntCmd, len(s.queues))
		for _, q := range s.queues {
			cmds[q] = pipe.LLen(rctx, queuePrefix(q)+"pending")
		}
		_, perr := pipe.Exec(rctx)
		if err := errors.Join(merr, perr); err != nil {
			if ctx.Err() == nil {
				s.log.DebugContext(ctx, "capacity reading failed", slog.Any("err", err))
			}
			return
		}
		pending := make(map[string]int, len(cmds))
		for q, c := range cmds {
			pending[q] = int(c.Val())
		}
		s.cap.mu.Lock()
		s.cap.watching, s.cap.memory, s.cap.pending = true, memory, pending
		s.cap.mu.Unlock()
	}
	read()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			read()
		}
	}
}

// memoryUse is used_memory/maxmemory of the fullest master.
func (s *Store) memoryUse(ctx context.Context) (float64, error) {
	ratio := func(info string) float64 {
		used, limit := infoField(info, "used_memory"), infoField(info, "maxmemory")
		if limit <= 0 {
			return 0
		}
		return used / limit
	}
	if cc, ok := s.rc.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		var worst float64
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			info, err := c.Info(ctx, "memory").Result()
			if err != nil {
				return err
			}
			mu.Lock()
			worst = max(worst, ratio(info))
			mu.Unlock()
			return nil
		})
		return worst, err
	}
	info, err := s.rc.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	return ratio(info), nil
}

func infoField(info, name string) float64 {
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

// Ready reports whether the store can take tasks: Redis answers, and is
// not over its memory headroom.
func (s *Store) Ready(ctx context.Context) error {
	if err := s.Ping(ctx); err != nil {
		return err
	}
	watching, memory, _, oom := s.cap.read()
	if oom || (watching && s.maxMemory > 0 && memory >= s.maxMemory) {
		return fmt.Errorf("redis memory at %.0f%% of maxmemory (refusing above %.0f%%): %w", memory*100, s.maxMemory*100, ErrRedisFull)
	}
	return nil
}

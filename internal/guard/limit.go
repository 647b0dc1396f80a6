package guard

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is one token bucket per key (a credential's name, or an address
// when there is none): rate per second, burst at most. Buckets idle for
// long are forgotten, so a flood of keys can not grow it without bound.
type Limiter struct {
	rate  rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// maxBuckets bounds memory: past it, idle buckets are swept at once.
const maxBuckets = 100_000

// NewLimiter returns a Limiter; perSecond <= 0 means no limit.
func NewLimiter(perSecond float64, burst int) *Limiter {
	return &Limiter{rate: rate.Limit(perSecond), burst: max(burst, 1), now: time.Now, buckets: map[string]*bucket{}}
}

// Allow takes n tokens from key's bucket. When there are not enough it
// takes none and says how long until there will be.
func (l *Limiter) Allow(key string, n int) (ok bool, retryAfter time.Duration) {
	if l == nil || l.rate <= 0 {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucketAt(key, now)
	if n > l.burst {
		return false, time.Duration(math.Ceil(float64(n)/float64(l.rate))) * time.Second
	}
	r := b.lim.ReserveN(now, n)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// AllowUpTo takes as many of n tokens as key's bucket holds, and says how
// many it took (n when there is no limit).
func (l *Limiter) AllowUpTo(key string, n int) int {
	if l == nil || l.rate <= 0 {
		return n
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucketAt(key, now)
	got := min(n, int(b.lim.TokensAt(now)))
	if got > 0 {
		b.lim.AllowN(now, got)
	}
	return got
}

// Rate is the tokens per second (0: no limit).
func (l *Limiter) Rate() float64 {
	if l == nil {
		return 0
	}
	return float64(l.rate)
}

// sweep forgets buckets that have been full (idle) for a while.
func (l *Limiter) sweep(now time.Time) {
	if now.Sub(l.swept) < time.Minute && len(l.buckets) < maxBuckets {
		return
	}
	l.swept = now
	idle := time.Duration(float64(l.burst)/float64(l.rate)*float64(time.Second)) + time.Minute
	for k, b := range l.buckets {
		if now.Sub(b.seen) > idle {
			delete(l.buckets, k)
		}
	}
}

// bucketAt is key's bucket, made full when key has none, marked seen at
// now after the idle ones are swept. l.mu must be held.
func (l *Limiter) bucketAt(key string, now time.Time) *bucket {
	l.sweep(now)
	b, found := l.buckets[key]
	if !found {
		b = &bucket{lim: rate.NewLimiter(l.rate, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	return b
}

package guard

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Lockout records failed logins and slows down an address that keeps
// failing: past a burst of failures it answers 429 with Retry-After. The
// monitor asks before looking at the credentials at all, so guessing its
// password goes at a few tries a minute; the app asks only after a bad
// token (tokens are random: there is nothing to guess, and clients behind
// one proxy share an address). Every failure is logged (user, address,
// never the secret) and counted in taskstack_auth_failures_total{component}.
type Lockout struct {
	component string
	log       *slog.Logger
	failures  prometheus.Counter
	limit     *Limiter
}

// Failed-login budget per address: a burst of 5, then one every 10 s.
const (
	lockoutBurst     = 5
	lockoutPerMinute = 6
)

// NewLockout registers its counter on reg.
func NewLockout(component string, reg prometheus.Registerer, log *slog.Logger) (*Lockout, error) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "taskstack_auth_failures_total",
		Help: "Failed authentications (unknown token, wrong password, forged or expired session), by component.",
	}, []string{"component"})
	if err := reg.Register(vec); err != nil {
		// devstack: the app and the monitor share one registry.
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, err
		}
		vec = are.ExistingCollector.(*prometheus.CounterVec)
	}
	return &Lockout{
		component: component, log: log, failures: vec.WithLabelValues(component),
		limit: NewLimiter(float64(lockoutPerMinute)/60, lockoutBurst),
	}, nil
}

// Blocked answers 429 and reports true when the request's address has used
// up its failures.
func (l *Lockout) Blocked(w http.ResponseWriter, r *http.Request) bool {
	retryAfter, blocked := l.RetryAfter(r)
	if !blocked {
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	http.Error(w, "429 "+LockedOutMessage, http.StatusTooManyRequests)
	return true
}

// LockedOutMessage is why a locked-out address is refused.
const LockedOutMessage = "too many failed logins from your address; wait and try again"

// RetryAfter reports whether the request's address has used up its
// failures, and in how many seconds it may try again: for callers that
// write their own 429 (the app's API answers problem+json).
func (l *Lockout) RetryAfter(r *http.Request) (seconds int, blocked bool) {
	ok, wait := l.limit.peek(RemoteIP(r))
	if ok {
		return 0, false
	}
	return int(wait/time.Second) + 1, true
}

// Refused counts a failed login refused for the lockout (it is not
// logged again: a flood from one address would flood the logs).
func (l *Lockout) Refused() { l.failures.Inc() }

// Failed records one failed login of user ("" when none was given).
func (l *Lockout) Failed(r *http.Request, user string, reason error) {
	l.failures.Inc()
	l.limit.Allow(RemoteIP(r), 1)
	l.log.WarnContext(r.Context(), "authentication failed", slog.String("component", l.component),
		slog.String("user", user), slog.String("remote", RemoteIP(r)), slog.String("reason", reason.Error()),
		slog.String("path", r.URL.Path))
}

// peek reports whether key has a token left, without taking it.
func (l *Limiter) peek(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, found := l.buckets[key]
	if !found {
		return true, 0
	}
	if b.lim.TokensAt(now) >= 1 {
		return true, 0
	}
	r := b.lim.ReserveN(now, 1)
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return false, d
}

package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"taskstack/internal/store"
	"taskstack/internal/tasks"
)

// problem is an RFC 9457 problem detail. It is also the error type handlers
// return for client mistakes.
type problem struct {
	Type       string             `json:"type"`
	Title      string             `json:"title"`
	Status     int                `json:"status"`
	Detail     string             `json:"detail,omitempty"`
	Instance   string             `json:"instance,omitempty"`
	Errors     []tasks.FieldError `json:"errors,omitempty"`
	retryAfter int
	cause      error
}

func (p *problem) Error() string {
	if p.cause != nil {
		return p.Title + ": " + p.cause.Error()
	}
	return p.Title + ": " + p.Detail
}

func (p *problem) Unwrap() error { return p.cause }

func newProblem(status int, detail string, fields ...tasks.FieldError) *problem {
	return &problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail, Errors: fields}
}

// Retry-After for a Redis outage: long enough not to hammer it.
const retryAfterSeconds = 5

// classify maps any handler error to the problem the client sees. Internal
// text never reaches the client for 5xx.
func classify(err error) *problem {
	var p *problem
	var verr *tasks.ValidationError
	var derr *tasks.DecodeError
	var maxErr *http.MaxBytesError
	with := func(status int, detail string, fields ...tasks.FieldError) *problem {
		out := newProblem(status, detail, fields...)
		out.cause = err
		return out
	}
	switch {
	case errors.As(err, &p):
		return p
	case errors.As(err, &maxErr):
		return with(http.StatusRequestEntityTooLarge, "the body is larger than "+strconv.FormatInt(maxErr.Limit, 10)+" bytes")
	case errors.As(err, &derr):
		if derr.Field == "" {
			return with(http.StatusBadRequest, "the body "+derr.Message)
		}
		return with(http.StatusBadRequest, fmt.Sprintf("field %q %s", derr.Field, derr.Message), tasks.FieldError{Field: derr.Field, Message: derr.Message})
	case errors.As(err, &verr):
		return with(http.StatusUnprocessableEntity, "the request has invalid fields", verr.Fields...)
	case errors.Is(err, store.ErrNotFound):
		return with(http.StatusNotFound, "no such task")
	case errors.Is(err, store.ErrBadCursor):
		return with(http.StatusUnprocessableEntity, "the cursor is not valid", tasks.FieldError{Field: "cursor", Message: store.ErrBadCursor.Error()})
	case errors.Is(err, store.ErrTooDeep):
		return with(http.StatusUnprocessableEntity, "the page is too deep", tasks.FieldError{Field: "page", Message: store.ErrTooDeep.Error()})
	case errors.Is(err, store.ErrKeyTooLong):
		return with(http.StatusBadRequest, store.ErrKeyTooLong.Error())
	case errors.Is(err, store.ErrKeyReused):
		return with(http.StatusConflict, store.ErrKeyReused.Error())
	case errors.Is(err, store.ErrKeyExpiring):
		return with(http.StatusConflict, store.ErrKeyExpiring.Error())
	case errors.Is(err, store.ErrKeyTaskGone):
		return with(http.StatusGone, store.ErrKeyTaskGone.Error())
	case errors.Is(err, store.ErrQueueFull):
		out := with(http.StatusTooManyRequests, store.ErrQueueFull.Error())
		out.retryAfter = retryAfterSeconds
		return out
	case errors.Is(err, store.ErrRedisFull):
		out := with(http.StatusServiceUnavailable, store.ErrRedisFull.Error())
		out.retryAfter = retryAfterSeconds
		return out
	case errors.Is(err, store.ErrUnavailable):
		out := with(http.StatusServiceUnavailable, store.ErrUnavailable.Error())
		out.retryAfter = retryAfterSeconds
		return out
	}
	return with(http.StatusInternalServerError, "internal error")
}

// handler is an HTTP handler that returns its error.
type handler func(w http.ResponseWriter, r *http.Request) error

// api renders errors as application/problem+json.
func (s *Server) api(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeProblem(w, r, s.report(r, err))
		}
	})
}

// writeProblem writes p as application/problem+json.
func (s *Server) writeProblem(w http.ResponseWriter, r *http.Request, p *problem) {
	if p.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(p.retryAfter))
	}
	out := *p
	out.Instance = r.URL.Path
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(out)
}

// report classifies err and logs it when it is the server's fault, at most
// one line per kind of fault every few seconds (with how many were left
// out), so a flood of failing requests does not flood the logs.
func (s *Server) report(r *http.Request, err error) *problem {
	p := classify(err)
	if p.Status >= 500 {
		s.errLog.write(r.Context(), strconv.Itoa(p.Status)+" "+r.Pattern, "request failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", p.Status), slog.Any("err", err))
	}
	return p
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// sampledLog writes at most one error line per key every interval, with
// the number of lines it left out since the last one.
type sampledLog struct {
	log      *slog.Logger
	interval time.Duration
	mu       sync.Mutex
	last     map[string]time.Time
	dropped  map[string]int
}

func newSampledLog(log *slog.Logger, interval time.Duration) *sampledLog {
	return &sampledLog{log: log, interval: interval, last: map[string]time.Time{}, dropped: map[string]int{}}
}

func (l *sampledLog) write(ctx context.Context, key, msg string, attrs ...any) {
	now := time.Now()
	l.mu.Lock()
	if now.Sub(l.last[key]) < l.interval {
		l.dropped[key]++
		l.mu.Unlock()
		return
	}
	suppressed := l.dropped[key]
	l.last[key], l.dropped[key] = now, 0
	l.mu.Unlock()
	if suppressed > 0 {
		attrs = append(attrs, slog.Int("suppressed", suppressed))
	}
	l.log.ErrorContext(ctx, msg, attrs...)
}

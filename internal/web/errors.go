package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

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
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &p):
		return p
	case errors.As(err, &verr):
		out := newProblem(http.StatusUnprocessableEntity, "the request has invalid fields", verr.Fields...)
		out.cause = err
		return out
	case errors.As(err, &maxErr):
		out := newProblem(http.StatusRequestEntityTooLarge, "the body is larger than "+strconv.FormatInt(maxErr.Limit, 10)+" bytes")
		out.cause = err
		return out
	case errors.Is(err, asynq.ErrTaskNotFound):
		return &problem{Type: "about:blank", Title: "Not Found", Status: http.StatusNotFound, Detail: "no such task", cause: err}
	case errors.Is(err, asynq.ErrQueueNotFound):
		return &problem{Type: "about:blank", Title: "Not Found", Status: http.StatusNotFound, Detail: "no such task (queue is empty)", cause: err}
	case unavailable(err):
		out := newProblem(http.StatusServiceUnavailable, "the task store (Redis) is unavailable; try again shortly")
		out.retryAfter, out.cause = retryAfterSeconds, err
		return out
	}
	out := newProblem(http.StatusInternalServerError, "internal error")
	out.cause = err
	return out
}

// unavailable reports whether err means Redis could not be reached or did
// not answer in time.
func unavailable(err error) bool {
	var netErr net.Error
	var errno syscall.Errno
	switch {
	case errors.As(err, &netErr), errors.As(err, &errno),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, redis.ErrClosed),
		errors.Is(err, redis.ErrPoolTimeout):
		return true
	}
	msg := err.Error()
	for _, s := range []string{"connection refused", "i/o timeout", "LOADING", "MASTERDOWN", "READONLY", "connection reset", "broken pipe", "NOAUTH", "WRONGPASS"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// handler is an HTTP handler that returns its error.
type handler func(w http.ResponseWriter, r *http.Request) error

// apiHandler renders errors as application/problem+json.
func (s *Server) api(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			p := s.report(r, err)
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
	})
}

// report classifies err and logs it when it is the server's fault.
func (s *Server) report(r *http.Request, err error) *problem {
	p := classify(err)
	if p.Status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", p.Status), slog.Any("err", err))
	}
	return p
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

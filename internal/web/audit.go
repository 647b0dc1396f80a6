package web

import (
	"context"
	"net/http"

	"taskstack/internal/audit"
	"taskstack/internal/guard"
	"taskstack/internal/telemetry"
)

type auditKey struct{}

// audited writes one audit line per request to h, a mutation: require
// fills in who asked, the handler what it changed, and the answer's status
// decides the outcome. It wraps require, so refused callers are recorded
// too.
func (s *Server) audited(action string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := &audit.Event{Action: action, Remote: guard.RemoteIP(r)}
		sw := telemetry.Recorder(w)
		h.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), auditKey{}, e)))
		e.Status = sw.Code()
		e.Outcome = audit.OutcomeOf(e.Status)
		s.audit.Record(r.Context(), *e)
	})
}

// auditNote is the audit event of the request, for its handler to fill
// in; outside audited routes it is a throwaway.
func auditNote(ctx context.Context) *audit.Event {
	if e, ok := ctx.Value(auditKey{}).(*audit.Event); ok {
		return e
	}
	return &audit.Event{}
}

package monitor

import (
	"log/slog"
	"net/http"

	"taskstack/internal/guard"
	"taskstack/internal/telemetry"
)

// routes is the dashboard: asynqmon, with the routes it gets wrong answered
// here, behind the credentials when they are configured. The operational
// endpoints (/metrics, /healthz, /readyz) are the process skeleton's, open.
func (m *Monitor) routes() http.Handler {
	root := m.o.RootPath
	dash := http.NewServeMux()
	dash.Handle("GET "+root+"/api/metrics", m.prom)
	dash.Handle(root+"/", m.dash)
	// With a root such as "/monitor", ServeMux redirects "/monitor" to
	// "/monitor/"; anything outside the root is a 404 without a challenge.
	mux := http.NewServeMux()
	mux.Handle(root+"/", m.protect(dash))
	return mux
}

// protect puts the dashboard behind basic auth (when configured) and
// refuses cross-site mutating requests: a browser sends saved basic-auth
// credentials with any request, so without this another site could make a
// logged-in operator's browser run or delete tasks.
func (m *Monitor) protect(h http.Handler) http.Handler {
	h = logServerErrors(h, m.log)
	h = http.NewCrossOriginProtection().Handler(h)
	if m.o.Username != "" {
		h = basicAuth(h, m.o.Username, m.o.Password, "taskstack monitor", m.lockout)
	}
	// Outermost but for the headers: refused calls are audited too.
	h = m.audited(h)
	// No strict CSP: asynqmon's bundled UI uses inline styles and web fonts.
	return guard.Headers("frame-ancestors 'none'", h)
}

// logServerErrors logs the dashboard's 5xx answers: asynqmon itself logs
// nothing, so without this a broken page leaves no trace on the server.
func logServerErrors(h http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := telemetry.NewStatusRecorder(w)
		h.ServeHTTP(sw, r)
		if sw.Code() >= 500 {
			log.WarnContext(r.Context(), "dashboard request failed",
				slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", sw.Code()))
		}
	})
}

package monitor

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"taskstack/internal/redisconn"
	"taskstack/internal/telemetry"
)

// routes is the monitor's whole HTTP surface. The operational endpoints are
// open; everything under the root path is the dashboard and needs the
// credentials when they are configured.
func (m *Monitor) routes() http.Handler {
	root := m.cfg.RootPath
	mux := http.NewServeMux()

	// Operations: Prometheus and the orchestrator have no dashboard password.
	mux.Handle("GET /metrics", telemetry.MetricsHandler(m.registry))
	mux.HandleFunc("GET /healthz", m.healthz)
	mux.HandleFunc("GET /readyz", m.readyz)

	// The dashboard: asynqmon, with the routes it gets wrong answered here.
	dash := http.NewServeMux()
	dash.Handle("GET "+root+"/api/metrics", m.prom)
	dash.Handle(root+"/", m.dash)
	// With a root such as "/monitor", ServeMux redirects "/monitor" to
	// "/monitor/"; anything outside the root is a 404 without a challenge.
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
	if m.cfg.Username != "" {
		h = basicAuth(h, m.cfg.Username, m.cfg.Password, "taskstack monitor")
	}
	return securityHeaders(h)
}

func (m *Monitor) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (m *Monitor) readyz(w http.ResponseWriter, r *http.Request) {
	if err := redisconn.Ping(r.Context(), m.redis, time.Second); err != nil {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "redis unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ready\n"))
}

// securityHeaders keeps the dashboard out of frames and its API answers
// out of caches. No strict
// CSP: asynqmon's bundled UI uses inline styles and web fonts.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Content-Security-Policy", "frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		if strings.Contains(r.URL.Path, "/api/") {
			hd.Set("Cache-Control", "no-store") // task payloads stay out of caches
		}
		h.ServeHTTP(w, r)
	})
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

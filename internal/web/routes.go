package web

import (
	"net/http"
	"slices"
	"strings"

	"taskstack/internal/audit"
	"taskstack/internal/guard"
)

// contentSecurityPolicy is strict: the page has no inline script or style
// and loads nothing from elsewhere.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// routes is the app's whole HTTP surface but for the operational endpoints
// (/metrics, /healthz, /readyz), which the process skeleton serves. Every
// route names the scope it needs; with authentication off (dev) everyone
// has every scope.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h http.Handler) {
		if pattern != "/" && pattern != "/api/" {
			s.patterns = append(s.patterns, pattern)
		}
		// Span names and metric labels are the route pattern, never the raw path.
		mux.Handle(pattern, s.httpm.Route(pattern, h))
	}
	page := func(scope guard.Scope, h handler) http.Handler { return s.require(scope, true, s.ui(h)) }
	api := func(scope guard.Scope, h handler) http.Handler { return s.require(scope, false, s.api(h)) }

	// The page.
	handle("GET /{$}", page(guard.ScopeRead, s.index))
	handle("POST /tasks", s.audited(audit.Submit, page(guard.ScopeWrite, s.submitForm)))
	handle("GET /tasks/{queue}/{id}", page(guard.ScopeRead, s.taskPage))
	handle("GET /static/", s.static())
	handle("GET /login", s.ui(s.getLogin))
	handle("POST /login", s.ui(s.postLogin))
	handle("POST /logout", s.ui(s.postLogout))

	// The API.
	handle("POST /api/v1/tasks", s.audited(audit.Submit, api(guard.ScopeWrite, s.createTask)))
	handle("POST /api/v1/batches", s.audited(audit.Batch, api(guard.ScopeWrite, s.createBatch)))
	handle("GET /api/v1/tasks", api(guard.ScopeRead, s.listTasks))
	handle("GET /api/v1/queues", api(guard.ScopeRead, s.listQueues))
	handle("GET /api/v1/schedule", api(guard.ScopeRead, s.listSchedule))
	handle("GET /api/v1/queues/{queue}/tasks/{id}", api(guard.ScopeRead, s.getTask))
	handle("DELETE /api/v1/queues/{queue}/tasks/{id}", s.audited(audit.Delete, api(guard.ScopeAdmin, s.deleteTask)))
	handle("GET /finished_tasks", api(guard.ScopeRead, s.finishedTasks))
	handle("GET /api/v1/events", api(guard.ScopeRead, s.events))
	// The API's description needs no credential: it holds no data.
	handle("GET /api/v1/openapi.json", s.api(s.openAPI))

	// Anything else: 405 with Allow for a known path and another method, a
	// 404 problem for API clients, a page for people.
	handle("/api/", s.api(func(w http.ResponseWriter, r *http.Request) error {
		return s.notFound(mux, w, r, "no such endpoint: "+r.Method+" "+r.URL.Path)
	}))
	handle("/", s.ui(func(w http.ResponseWriter, r *http.Request) error {
		return s.notFound(mux, w, r, "There is no page at this address.")
	}))
	// Cross-site POSTs and DELETEs (a page elsewhere submitting to us from a
	// user's browser) are refused; API clients such as curl send no
	// Origin/Sec-Fetch-Site and are unaffected.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(s.api(func(http.ResponseWriter, *http.Request) error {
		return newProblem(http.StatusForbidden, "cross-origin request refused: send it from this site's own pages, or without a browser's Origin header")
	}))
	return guard.Headers(contentSecurityPolicy, cop.Handler(mux))
}

// notFound answers 405 with Allow when the path exists for other methods
// (the catch-all patterns hide ServeMux's own 405), 404 otherwise.
func (s *Server) notFound(mux *http.ServeMux, w http.ResponseWriter, r *http.Request, msg string) error {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "/" && pattern != "/api/" && !slices.Contains(allow, m) {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		if slices.Contains(allow, http.MethodGet) {
			allow = append(allow, http.MethodHead)
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		return newProblem(http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed here; use "+strings.Join(allow, ", "))
	}
	return newProblem(http.StatusNotFound, msg)
}

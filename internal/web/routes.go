package web

import (
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"taskstack/internal/guard"
)

// contentSecurityPolicy is strict: the page has no inline script or style
// and loads nothing from elsewhere.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// routes is the app's whole HTTP surface but for the operational endpoints
// (/metrics, /healthz, /readyz), which the process skeleton serves.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h http.Handler) {
		// Span names and metric labels are the route pattern, never the raw path.
		h = s.httpm.Wrap(pattern, h)
		mux.Handle(pattern, otelhttp.NewHandler(h, pattern,
			otelhttp.WithTracerProvider(s.o.Tracer), otelhttp.WithPropagators(s.o.Propagator)))
	}

	// The page.
	handle("GET /{$}", s.ui(s.index))
	handle("POST /tasks", s.ui(s.submitForm))
	handle("GET /tasks/{queue}/{id}", s.ui(s.taskPage))
	handle("GET /static/", s.static())

	// The API.
	handle("POST /api/v1/tasks", s.api(s.createTask))
	handle("GET /api/v1/tasks", s.api(s.listTasks))
	handle("GET /api/v1/queues", s.api(s.listQueues))
	handle("GET /api/v1/schedule", s.api(s.listSchedule))
	handle("GET /api/v1/queues/{queue}/tasks/{id}", s.api(s.getTask))
	handle("DELETE /api/v1/queues/{queue}/tasks/{id}", s.api(s.deleteTask))
	handle("GET /finished_tasks", s.api(s.finishedTasks))

	// Anything else: a problem for API clients, a page for people.
	handle("/api/", s.api(func(w http.ResponseWriter, r *http.Request) error {
		return newProblem(http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	}))
	handle("/", s.ui(func(w http.ResponseWriter, r *http.Request) error {
		return newProblem(http.StatusNotFound, "There is no page at this address.")
	}))
	// Cross-site POSTs and DELETEs (a page elsewhere submitting to us from a
	// user's browser) are refused; API clients such as curl send no
	// Origin/Sec-Fetch-Site and are unaffected.
	return guard.Headers(contentSecurityPolicy, http.NewCrossOriginProtection().Handler(mux))
}

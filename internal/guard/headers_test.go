package guard_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"taskstack/internal/guard"
)

func TestHeaders(t *testing.T) {
	t.Parallel()
	h := guard.Headers("default-src 'self'", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for path, cache := range map[string]string{"/": "", "/static/app.js": "", "/api/v1/tasks": "no-store", "/monitor/api/queues": "no-store"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		for k, v := range map[string]string{
			"Content-Security-Policy": "default-src 'self'", "X-Frame-Options": "DENY",
			"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
		} {
			if got := w.Header().Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", path, k, got, v)
			}
		}
		if got := w.Header().Get("Cache-Control"); got != cache {
			t.Errorf("%s: Cache-Control %q, want %q", path, got, cache)
		}
	}
}

package guard

import (
	"net/http"
	"strings"
)

// Headers sets the security headers of every answer: csp as the
// Content-Security-Policy, no framing, no MIME sniffing, same-origin
// referrers, and no caching of API answers (task payloads and results stay
// out of shared caches).
func Headers(csp string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		if strings.Contains(r.URL.Path, "/api/") {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}

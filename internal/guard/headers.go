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
	// Each answer gets the same value slices: no allocation per header.
	// Their capacity is their length, so a later Add copies instead of
	// writing into the shared array.
	one := func(v string) []string { return []string{v}[:1:1] }
	cspV, frame, sniff, referrer, noStore := one(csp), one("DENY"), one("nosniff"), one("same-origin"), one("no-store")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd["Content-Security-Policy"] = cspV
		hd["X-Frame-Options"] = frame
		hd["X-Content-Type-Options"] = sniff
		hd["Referrer-Policy"] = referrer
		if strings.Contains(r.URL.Path, "/api/") {
			hd["Cache-Control"] = noStore
		}
		h.ServeHTTP(w, r)
	})
}

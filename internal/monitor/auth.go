package monitor

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"

	"taskstack/internal/guard"
)

var errWrongPassword = errors.New("wrong user name or password")

// basicAuth requires user/password on every request to h. Both sides are
// hashed first so the comparison takes the same time whatever the lengths,
// and both fields are always compared so a right user name is not revealed
// by a faster answer. A wrong attempt is logged (user name and address,
// never the password) and counted, and an address that keeps failing is
// answered 429 until it slows down.
func basicAuth(h http.Handler, user, password, realm string, lockout *guard.Lockout) http.Handler {
	wantUser := sha256.Sum256([]byte(user))
	wantPass := sha256.Sum256([]byte(password))
	challenge := `Basic realm="` + realm + `", charset="UTF-8"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if lockout.Blocked(w, r) {
			lockout.Refused()
			return
		}
		u, p, ok := r.BasicAuth()
		gotUser := sha256.Sum256([]byte(u))
		gotPass := sha256.Sum256([]byte(p))
		userOK := subtle.ConstantTimeCompare(gotUser[:], wantUser[:])
		passOK := subtle.ConstantTimeCompare(gotPass[:], wantPass[:])
		if !ok || userOK&passOK != 1 {
			if r.Header.Get("Authorization") != "" {
				// A browser's first request carries no credentials: only a
				// wrong attempt is a failure.
				lockout.Failed(r, u, errWrongPassword)
			}
			w.Header().Set("WWW-Authenticate", challenge)
			http.Error(w, "401 unauthorized: the monitor needs its user name and password", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

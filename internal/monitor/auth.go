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
		if !ok || !hashesMatch(u, p, wantUser, wantPass) {
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

// credentialsMatch compares a user name and password with the configured
// ones in constant time.
func credentialsMatch(user, password, wantUser, wantPassword string) bool {
	return hashesMatch(user, password, sha256.Sum256([]byte(wantUser)), sha256.Sum256([]byte(wantPassword)))
}

// hashesMatch compares both fields, always both, through their hashes, so
// that neither a length nor a right user name shows in the time taken.
func hashesMatch(user, password string, wantUser, wantPassword [32]byte) bool {
	gotUser := sha256.Sum256([]byte(user))
	gotPass := sha256.Sum256([]byte(password))
	userOK := subtle.ConstantTimeCompare(gotUser[:], wantUser[:])
	passOK := subtle.ConstantTimeCompare(gotPass[:], wantPassword[:])
	return userOK&passOK == 1
}

// Package guard holds what stands between the network and taskstack's
// HTTP handlers, shared by the app and the monitor so both are protected
// the same way:
//
//   - security headers on every answer (headers.go);
//   - who is asking: named bearer tokens with scopes, read from a file of
//     hashes and reloaded when it changes (tokens.go), signed session
//     cookies for people who logged in with a token (session.go), or a user
//     name from a trusted authenticating proxy (identity.go);
//   - how much they may ask: per-key token buckets (limit.go) and a lockout
//     that slows down an address that keeps failing to log in (lockout.go).
//
// Secrets are only ever compared as SHA-256 hashes, in constant time.
package guard

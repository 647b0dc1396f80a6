// Package guard holds what stands between the network and taskstack's
// HTTP handlers, shared by the app and the monitor so both are protected
// the same way: security headers on every answer.
package guard

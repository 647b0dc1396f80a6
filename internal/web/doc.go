// Package web is the app: the page where a person submits tasks and watches
// them run, and the versioned JSON API. It only enqueues and inspects; it
// never runs task code.
//
// All routes are in routes.go. Handlers return an error; one adapter
// (errors.go) maps it to a status, writing application/problem+json for the
// API and a friendly page for the UI, and logs server faults only.
package web

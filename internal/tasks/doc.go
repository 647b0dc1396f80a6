// Package tasks is the task catalogue shared by the app and the worker:
// every task type's name, payload and validation, default queue and
// options, and handler, plus the request a caller makes to enqueue one and
// the one place that request is validated.
//
// A task type is one file: a payload struct with a Validate method and a
// handler, turned into a catalogue entry by Define (see echo.go, and
// docs/tasks.md for a walk-through), plus one line in NewCatalogueWith. A
// type that needs configuration or a client gets it through Deps, built
// by the binaries (see webhook.go).
//
// The catalogue knows no HTTP, no Redis and no worker runtime, so an
// unknown type or a bad payload is refused at enqueue time with a message
// naming the field, not discovered later by a worker.
package tasks

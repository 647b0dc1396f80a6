// Package tasks is the task catalogue shared by the app and the worker: each
// task type's name, payload and validation, default queue and options, and
// handler, plus the Enqueuer that puts validated tasks on a queue with the
// trace context and enqueue time in their headers.
//
// The catalogue knows no HTTP and no worker runtime, so an unknown type or a
// bad payload is refused at enqueue time with a message naming the field,
// not discovered later by a worker.
package tasks

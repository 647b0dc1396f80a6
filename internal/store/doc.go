// Package store is the task store: the one package that talks to Redis
// about tasks. It owns every Redis key that is not asynq's own (idempotency
// claims, cancel marks, the published schedule of periodic tasks) and every
// operation on tasks that takes more than one step: enqueue (with its producer span and the headers the worker
// reads), enqueue-once by idempotency key, reading one task, listing and
// paging across queues and states, queue statistics, delete-or-cancel, and
// keeping asynq's set of queues registered.
//
// Reads go straight to asynq's data layout (its lists, sorted sets and task
// hashes) with one Lua script per queue instead of asynq's Inspector, which
// runs several commands per queue and state, samples memory on every call
// and takes no context. layout_test.go checks these reads against asynq's
// own Inspector for every state, so an asynq upgrade that changes the
// layout fails a test instead of the page.
//
// web, worker and monitor call the store; none of them names a Redis key.
package store

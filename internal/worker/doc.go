// Package worker runs the task catalogue's handlers on asynq servers
// consuming the priority queues, behind a middleware that continues the
// producer's trace and records per-type metrics, and serves the admin port
// (/metrics, /healthz, /readyz).
package worker

// Package worker runs the task catalogue's handlers on asynq servers
// consuming the priority queues, behind a middleware that continues the
// producer's trace, records per-type metrics, and ends tasks that were
// cancelled on request instead of retrying them. The process skeleton
// serves its /metrics, /healthz and /readyz.
package worker

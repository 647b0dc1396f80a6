// Package monitor is the queue dashboard: asynqmon (github.com/hibiken/asynqmon)
// mounted as an http.Handler behind HTTP basic auth, optionally read-only,
// plus the one exporter of asynq's queue metrics (asynq_* series from
// github.com/hibiken/asynq/x/metrics).
//
// asynqmon has no authentication of its own: anyone who reaches it can
// delete or run tasks. Everything under the root path therefore requires the
// configured credentials, compared in constant time; /metrics, /healthz and
// /readyz (the process skeleton's) stay open so Prometheus and the
// orchestrator can reach them.
//
// Queue metrics come from Redis, not from the process, so exactly one
// process must export them: the monitor. Workers export only their own
// per-task metrics, and replicas do not multiply the asynq_* series.
//
// asynqmon v0.7.2 was built for asynq v0.24; where it misbehaves with asynq
// v0.26 this package works around it: memusage.go fixes the queue
// memory-usage script on every client, prometheus.go answers the metrics
// view itself with the same JSON shape (docs/monitor.md).
package monitor

// Package schedule runs periodic tasks from a YAML file in every worker
// replica, each tick enqueued exactly once.
//
// The file (SCHEDULE_FILE) lists entries: a name, a cron line or @every,
// a task type, payload and queue, an optional time zone and enabled flag.
// Every entry goes through the catalogue's Prepare when the file is read,
// so a schedule holds only tasks the API would accept; a bad file names
// the line and field of every problem, stops the worker at start, and is
// refused (the schedule in force stays) when it changes later. The file is
// read again every few seconds and applied when its content changed, which
// also catches a Kubernetes ConfigMap's symlink swap.
//
// Exactly once with N replicas: there is no leader. Every replica computes
// the same ticks (cron lines in the entry's time zone; @every counted from
// the Unix epoch, not from the replica's start) and enqueues each with the
// task ID sched:<entry>:<tick Unix time>. Redis accepts the first and
// refuses the others (asynq.ErrTaskIDConflict, counted as "duplicate").
// Nothing is elected, leased or fenced, so a replica can die at any moment
// without a hand-over: the others enqueue the next tick as always. The
// cost is N-1 refused enqueues per tick. The refusal holds as long as the
// tick's task is kept: completed tasks stay for the store's retention,
// which must exceed the grace below (replicas attempt a tick only within
// it), so a tick can not be enqueued twice.
//
// Missed ticks: a tick is enqueued at most Grace after its time. A worker
// that starts (or wakes up) later than that skips it; within the grace it
// enqueues the latest due tick once, never a burst of every tick missed.
package schedule

package tasks

import (
	"strconv"
	"time"
)

// HeaderEnqueuedAt is the task header holding the enqueue time (Unix
// nanoseconds). The W3C trace context travels under its own keys
// ("traceparent", ...). asynq stores headers with the task and restores
// them on every retry.
const HeaderEnqueuedAt = "taskstack-enqueued-at"

// HeaderDueAt is set on a task enqueued with a delay (process_in): the
// time it is due (Unix nanoseconds). Without it a task is due when
// enqueued.
const HeaderDueAt = "taskstack-due-at"

// DueAt reads when a task was due to start from its headers.
func DueAt(headers map[string]string) (time.Time, bool) {
	if v, ok := headers[HeaderDueAt]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return time.Unix(0, n), true
		}
	}
	return EnqueuedAt(headers)
}

// EnqueuedAt reads the enqueue time from a task's headers.
func EnqueuedAt(headers map[string]string) (time.Time, bool) {
	v, ok := headers[HeaderEnqueuedAt]
	if !ok {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, n), true
}

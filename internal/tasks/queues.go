package tasks

// The priority queues, highest first.
const (
	QueueHigh    = "high"
	QueueDefault = "default"
	QueueLow     = "low"
)

// Queues returns the priority queues, highest first.
func Queues() []string { return []string{QueueHigh, QueueDefault, QueueLow} }

// KnownQueue reports whether q is one of the priority queues.
func KnownQueue(q string) bool {
	return q == QueueHigh || q == QueueDefault || q == QueueLow
}

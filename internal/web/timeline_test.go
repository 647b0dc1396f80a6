package web

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"taskstack/internal/store"
)

// TestTimelineEdges: a running task's entry names the attempt under way,
// and an end asynq recorded to the second, before the last attempt's
// recorded end, is placed at that end, not before it.
func TestTimelineEdges(t *testing.T) {
	t.Parallel()
	ev := timeline(store.Task{State: "active", Retried: 1})
	if last := ev[len(ev)-1]; last.Event != eventRunning || last.Attempt != 2 {
		t.Errorf("an active task retried once: last entry %+v, want running attempt 2", last)
	}

	end := time.Date(2026, 1, 2, 3, 4, 5, 700_000_000, time.UTC)
	done := store.Task{State: "completed", CompletedAt: end.Truncate(time.Second), Attempts: []store.Attempt{{N: 1, StartedAt: end.Add(-time.Second), FinishedAt: end}}}
	ev = timeline(done)
	if last := ev[len(ev)-1]; last.Event != eventCompleted || !last.At.Equal(end) {
		t.Errorf("completed in the second of the attempt's end: %+v, want at %s", last, end)
	}
	// A second or more earlier is a real time, kept.
	for _, d := range []time.Duration{time.Second, 2 * time.Second} {
		done.CompletedAt = end.Add(-d)
		ev = timeline(done)
		if last := ev[len(ev)-1]; !last.At.Equal(end.Add(-d)) {
			t.Errorf("completed %s before the attempt's end: at %s, want kept", d, last.At)
		}
	}
}

// TestSampledLogCountsWhatItLeftOut: within the interval lines are left
// out and counted; the next line says how many.
func TestSampledLogCountsWhatItLeftOut(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := newSampledLog(slog.New(slog.NewJSONHandler(&buf, nil)), 200*time.Millisecond)
	for range 3 {
		l.write(t.Context(), "k", "failed")
	}
	time.Sleep(250 * time.Millisecond)
	l.write(t.Context(), "k", "failed")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || strings.Contains(lines[0], "suppressed") || !strings.Contains(lines[1], `"suppressed":2`) {
		t.Errorf("lines %q, want two, the second saying 2 were left out", lines)
	}
}

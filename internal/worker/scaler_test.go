package worker

import (
	"testing"
	"time"

	"taskstack/internal/store"
)

// The decision alone, step by step: a backlog asks for its loops at once,
// latency adds one at a time, quiet sheds one per quiet period, and between
// the thresholds nothing moves (the hysteresis).
func TestScalerNext(t *testing.T) {
	t.Parallel()
	a := Autoscale{Max: 4, PerLoop: 100, Latency: time.Second, Quiet: 30 * time.Second}.withDefaults(10 * time.Millisecond)
	s := &scaler{a: a}
	t0 := time.Unix(1_000_000, 0)
	steps := []struct {
		name string
		cur  int
		b    store.Backlog
		at   time.Duration
		want int
	}{
		{"idle stays at one", 1, store.Backlog{}, 0, 1},
		{"short queue", 1, store.Backlog{Pending: 99, Latency: 20 * time.Millisecond}, time.Second, 1},
		{"backlog asks for its loops at once", 1, store.Backlog{Pending: 250}, 2 * time.Second, 3},
		{"never above Max", 3, store.Backlog{Pending: 20000}, 3 * time.Second, 4},
		{"latency adds one", 2, store.Backlog{Pending: 5, Latency: 2 * time.Second}, 4 * time.Second, 3},
		{"between the thresholds: hold", 3, store.Backlog{Pending: 50, Latency: 300 * time.Millisecond}, 5 * time.Second, 3},
		{"quiet starts the clock", 3, store.Backlog{Pending: 1}, 6 * time.Second, 3},
		{"quiet, not long enough", 3, store.Backlog{}, 35 * time.Second, 3},
		{"quiet for the period: shed one", 3, store.Backlog{}, 36 * time.Second, 2},
		{"the next one waits another period", 2, store.Backlog{}, 50 * time.Second, 2},
		{"a burst resets the clock", 2, store.Backlog{Pending: 150}, 60 * time.Second, 2},
		{"quiet again", 2, store.Backlog{}, 61 * time.Second, 2},
		{"not yet", 2, store.Backlog{}, 90 * time.Second, 2},
		{"shed", 2, store.Backlog{}, 91 * time.Second, 1},
		{"never below one", 1, store.Backlog{}, 200 * time.Second, 1},
	}
	for _, st := range steps {
		if got := s.next(st.cur, st.b, t0.Add(st.at)); got != st.want {
			t.Errorf("%s: next(%d, %+v) = %d, want %d", st.name, st.cur, st.b, got, st.want)
		}
	}
}

func TestAutoscaleDefaults(t *testing.T) {
	t.Parallel()
	a := Autoscale{}.withDefaults(10 * time.Millisecond)
	if a.Max != 1 || a.Interval != time.Second || a.PerLoop != 1000 || a.Latency != 250*time.Millisecond || a.Quiet != 30*time.Second {
		t.Errorf("defaults %+v", a)
	}
	// A long poll interval alone makes tasks wait: the latency threshold
	// stays above what one idle loop's sleep causes.
	if a := (Autoscale{}).withDefaults(time.Second); a.Latency != 5*time.Second {
		t.Errorf("latency threshold with a 1s poll: %s", a.Latency)
	}
}

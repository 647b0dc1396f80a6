package telemetry_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"taskstack/internal/telemetry"
)

// slowBuffer is an output that takes its time, so lines gather while it
// writes.
type slowBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (s *slowBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.b.Write(p)
}

func TestLogWriterKeepsEveryLineInOrder(t *testing.T) {
	t.Parallel()
	out := &slowBuffer{}
	w := telemetry.NewLogWriter(out)
	const writers, lines = 8, 500
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				if _, err := fmt.Fprintf(w, "g%d %d\n", g, i); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// A write after Close goes straight through.
	fmt.Fprintf(w, "after close\n")
	got := strings.Split(strings.TrimSuffix(out.b.String(), "\n"), "\n")
	if len(got) != writers*lines+1 || got[len(got)-1] != "after close" {
		t.Fatalf("%d lines, last %q; want %d and the line written after Close", len(got), got[len(got)-1], writers*lines+1)
	}
	next := make([]int, writers)
	for _, l := range got[:len(got)-1] {
		var g, i int
		if _, err := fmt.Sscanf(l, "g%d %d", &g, &i); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if i != next[g] {
			t.Fatalf("writer %d: line %d after %d: out of order or lost", g, i, next[g]-1)
		}
		next[g]++
	}
	if out.writes >= writers*lines {
		t.Logf("%d writes for %d lines: nothing was gathered (a fast output)", out.writes, writers*lines)
	}
}

func TestLogWriterCloseTwice(t *testing.T) {
	t.Parallel()
	var out slowBuffer
	w := telemetry.NewLogWriter(&out)
	fmt.Fprintln(w, "one")
	_ = w.Close()
	_ = w.Close()
	if out.b.String() != "one\n" {
		t.Errorf("got %q", out.b.String())
	}
}

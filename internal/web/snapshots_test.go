package web

import (
	"context"
	"testing"
	"time"
)

// TestSnapshotsStayBounded: at most max keys are kept; a new key takes the
// place of one nobody asked for in a minute, and is not kept when every
// entry is in use.
func TestSnapshotsStayBounded(t *testing.T) {
	t.Parallel()
	c := newSnapshots(time.Minute, 2)
	loads := map[string]int{}
	get := func(key string) {
		t.Helper()
		if _, err := c.get(context.Background(), key, func(context.Context) (any, error) { loads[key]++; return key, nil }); err != nil {
			t.Fatal(err)
		}
	}
	get("a")
	get("b")
	get("c") // both in use: read, not kept
	get("c")
	if loads["c"] != 2 || len(c.entries) != 2 {
		t.Errorf("a third key with two in use: %d loads, %d entries; want 2 loads (not kept) and 2 entries", loads["c"], len(c.entries))
	}
	c.entries["a"].used = time.Now().Add(-2 * time.Minute)
	get("d") // takes a's place
	get("d")
	if loads["d"] != 1 || len(c.entries) != 2 || c.entries["a"] != nil {
		t.Errorf("a key after one went unused: %d loads, entries %v; want 1 load, a evicted", loads["d"], c.entries)
	}
}

// TestETagMatches: If-None-Match with our weak ETag, its strong form, a
// list, or *.
func TestETagMatches(t *testing.T) {
	t.Parallel()
	const etag = `W/"abc"`
	for header, want := range map[string]bool{
		`W/"abc"`:         true,
		`"abc"`:           true,
		`"x", W/"abc"`:    true,
		`*`:               true,
		`"abd"`:           false,
		`W/"abd", "abcd"`: false,
	} {
		if got := etagMatches(header, etag); got != want {
			t.Errorf("etagMatches(%s) = %v, want %v", header, got, want)
		}
	}
}

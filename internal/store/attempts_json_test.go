package store

import (
	"encoding/json"
	"testing"
)

// appendJSON writes exactly what json.Marshal writes, whatever the strings
// hold.
func TestAttemptJSON(t *testing.T) {
	t.Parallel()
	for _, a := range []Attempt{
		{N: 1, Start: 1_800_000_000_000, End: 1_800_000_000_250},
		{N: 2, Worker: "worker-7d9f-abc12", Start: 1, End: 2},
		{N: 3, Error: "cancelled on request: task failed permanently", Worker: "w", Start: -1, End: 0},
		{N: 20, Error: "quote \" backslash \\ html <a>&amp; tab\t newline\n nul\x00 del\x7f é ✓ \u2028 bad utf8 \xff", Worker: "hôte"},
	} {
		want, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.appendJSON(nil); string(got) != string(want) {
			t.Errorf("appendJSON\n got %s\nwant %s", got, want)
		}
	}
}

func BenchmarkAttemptJSON(b *testing.B) {
	a := Attempt{N: 1, Worker: "worker-7d9f-abc12", Start: 1_800_000_000_000, End: 1_800_000_000_250}
	b.Run("appendJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = a.appendJSON(make([]byte, 0, 96))
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(a)
		}
	})
}

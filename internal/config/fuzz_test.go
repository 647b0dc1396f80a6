package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParseQueues: WORKER_QUEUES is refused with an error, or parsed into
// named queues with weights in range that print back to the same value.
func FuzzParseQueues(f *testing.F) {
	for _, s := range []string{"high:6,default:3,low:1", "high", " high : 2 , low ", "a:0", "a:1001", "a:1,a:2", ",,", "a:b:c", ":3", "high:+5", "x:1_0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := ParseQueues(raw)
		if err != nil {
			if q != nil {
				t.Fatalf("error %v with a result %v", err, q)
			}
			return
		}
		if len(q) == 0 {
			t.Fatalf("%q: no queue and no error", raw)
		}
		var parts []string
		for _, name := range slices.Sorted(maps.Keys(q)) {
			w := q[name]
			if name == "" || name != strings.TrimSpace(name) || strings.ContainsAny(name, ",:") || w < 1 || w > 1000 {
				t.Fatalf("%q: accepted queue %q weight %d", raw, name, w)
			}
			parts = append(parts, fmt.Sprintf("%s:%d", name, w))
		}
		again, err := ParseQueues(strings.Join(parts, ","))
		if err != nil || !cmp.Equal(q, again) {
			t.Fatalf("%q parsed to %v, which prints to %q and parses to %v, %v", raw, q, strings.Join(parts, ","), again, err)
		}
	})
}

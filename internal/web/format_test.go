package web

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestUntilAndAgo: the page's wording of times to come and past, as
// app.js words them.
func TestUntilAndAgo(t *testing.T) {
	t.Parallel()
	soon, past := time.Now().Add(90*time.Second+400*time.Millisecond), time.Now().Add(-90*time.Second-400*time.Millisecond)
	if got := until(&soon); !regexp.MustCompile(`^in 1m(29|30)s$`).MatchString(got) {
		t.Errorf("until(in 90 s) = %q, want in 1m30s", got)
	}
	if got := ago(&past); !regexp.MustCompile(`^1m(30|31)s ago$`).MatchString(got) {
		t.Errorf("ago(90 s ago) = %q, want 1m30s ago", got)
	}
	if until(nil) != "" || ago(nil) != "" {
		t.Error("no time, no words")
	}
}

// TestPrettyJSON: a payload is indented, shown whole up to maxShownPayload
// bytes, and cut past it with a note.
func TestPrettyJSON(t *testing.T) {
	t.Parallel()
	if got := prettyJSON(json.RawMessage(`{"a":1}`)); got != "{\n  \"a\": 1\n}" {
		t.Errorf("prettyJSON = %q, want it indented", got)
	}
	exact := json.RawMessage(`"` + strings.Repeat("x", maxShownPayload-2) + `"`)
	if got := prettyJSON(exact); got != string(exact) {
		t.Errorf("a payload of exactly %d bytes was cut", maxShownPayload)
	}
	over := json.RawMessage(`"` + strings.Repeat("x", maxShownPayload-1) + `"`)
	if got := prettyJSON(over); !strings.HasSuffix(got, "\n… 1 more bytes: see the task as JSON") {
		t.Errorf("a payload one byte over: ends %q", got[len(got)-40:])
	}
}

// TestHumanSeconds: durations as the task page words them.
func TestHumanSeconds(t *testing.T) {
	t.Parallel()
	for in, want := range map[float64]string{0.0004: "<1ms", 0.0123456: "12ms", 1.23456: "1.23s", 75.6: "1m16s"} {
		if got := humanSeconds(in); got != want {
			t.Errorf("humanSeconds(%v) = %q, want %q", in, got, want)
		}
	}
}

package redisconn_test

import (
	"testing"

	"taskstack/internal/redisconn"
)

// TestRedact: a password never survives, also where url.Parse does not see
// user information (found by FuzzRedisURL: "?://u:pw@host" parsed as a
// query, "//@://:pw@host" as a path, and both were printed whole).
func TestRedact(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"redis://user:s3cret@host:6379/0":       "redis://user:xxxxx@host:6379/0",
		"redis://host:6379/0":                   "redis://host:6379/0",
		"?://0:000000@00":                       "?://xxxxx@00",
		"redis//user:s3cret@host":               "xxxxx@host",
		"//@://:000000@00":                      "//@://xxxxx@00",
		"redis://user@host/0":                   "redis://user@host/0",
		"redis-sentinel://:s3cret@a:1,b:2?m=x":  "redis-sentinel://:xxxxx@a:1,b:2?m=x",
		"redis://user:s3cret@host:port/0\x7f":   "redis://xxxxx@host:port/0\x7f",
		"redis://host:6379/0?password=s3cret\n": "(unparsable URL)",
	} {
		if got := redisconn.Redact(raw); got != want {
			t.Errorf("Redact(%q) = %q, want %q", raw, got, want)
		}
	}
}

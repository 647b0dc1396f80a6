package config

import (
	"strings"
	"testing"
)

// TestRangesAreInclusive: every numeric variable accepts both ends of its
// documented range and refuses a value just outside, so that a bound
// written < instead of <= (or a wrong constant) fails here.
func TestRangesAreInclusive(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, value string
		load        func(func(string) string) error
		ok          bool
	}{
		{"WORKER_CONCURRENCY", "1", loadWorkerErr, true},
		{"WORKER_CONCURRENCY", "10000", loadWorkerErr, true},
		{"WORKER_CONCURRENCY", "10001", loadWorkerErr, false},
		{"WORKER_SERVERS", "64", loadWorkerErr, true},
		{"WORKER_SERVERS", "65", loadWorkerErr, false},
		{"APP_SESSION_TTL", "1m", loadAppErr, true},
		{"APP_SESSION_TTL", "59s", loadAppErr, false},
		{"APP_SESSION_TTL", "720h", loadAppErr, true},
		{"APP_SESSION_TTL", "721h", loadAppErr, false},
		{"REDIS_MAX_MEMORY_USE", "0", loadAppErr, true},
		{"REDIS_MAX_MEMORY_USE", "1", loadAppErr, true},
		{"REDIS_MAX_MEMORY_USE", "-0.1", loadAppErr, false},
		{"APP_RATE_LIMIT", "0", loadAppErr, true},
		{"APP_RATE_LIMIT", "1e6", loadAppErr, true},
		{"APP_RATE_LIMIT", "1000001", loadAppErr, false},
		{"CANARY_INTERVAL", "1s", loadWorkerErr, true},
		{"CANARY_INTERVAL", "999ms", loadWorkerErr, false},
		{"CANARY_INTERVAL", "1h", loadWorkerErr, true},
		{"WORKER_QUEUES", "high:1000", loadWorkerErr, true},
		{"WORKER_QUEUES", "high:1001", loadWorkerErr, false},
		{"WORKER_QUEUES", "high:1", loadWorkerErr, true},
		{"APP_ADDR", "127.0.0.1:0", loadAppErr, true},
		{"APP_ADDR", ":65535", loadAppErr, true},
		{"APP_ADDR", ":65536", loadAppErr, false},
		{"APP_ADDR", ":-1", loadAppErr, false},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			t.Parallel()
			err := tt.load(envOf(map[string]string{tt.name: tt.value}))
			switch {
			case tt.ok && err != nil:
				t.Errorf("refused: %v", err)
			case !tt.ok && (err == nil || !strings.HasPrefix(err.Error(), tt.name+":")):
				t.Errorf("got %v, want a refusal naming %s", err, tt.name)
			}
		})
	}
}

// TestRedisURLs: the schemes and shapes REDIS_URL accepts, and where a
// production password may come from.
func TestRedisURLs(t *testing.T) {
	t.Parallel()
	for raw, ok := range map[string]bool{
		"redis://r:6379/0":                       true,
		"rediss://r:6380/0":                      true,
		"redis-sentinel://s1:26379,s2:26379?m=x": true,
		"redis-socket:///run/redis.sock":         true, // a path, no host
		"redis:///0":                             false,
		"rediss://":                              false,
		"http://r:6379":                          false,
	} {
		_, err := LoadWorker(envOf(map[string]string{"REDIS_URL": raw}))
		if ok != (err == nil) {
			t.Errorf("REDIS_URL=%s: %v", raw, err)
		}
	}
	prod := func(url string) error {
		_, err := LoadWorker(envOf(map[string]string{"APP_ENV": "prod", "REDIS_URL": url}))
		return err
	}
	if err := prod("redis://:Zq8-long-random-value@r:6379/0"); err != nil {
		t.Errorf("prod with the password in REDIS_URL: %v", err)
	}
	if err := prod("redis://default:Zq8-long-random-value@r:6379/0"); err != nil {
		t.Errorf("prod with user and password in REDIS_URL: %v", err)
	}
	for _, url := range []string{"redis://default@r:6379/0", "redis://r:6379/0"} {
		if err := prod(url); err == nil || !strings.HasPrefix(err.Error(), "REDIS_PASSWORD:") {
			t.Errorf("prod with %s and no REDIS_PASSWORD: %v, want REDIS_PASSWORD required", url, err)
		}
	}
}

// TestFloatDefaultIsDocumentedExactly: the default Vars reports (and the
// README lists) is the value itself, every digit of it.
func TestFloatDefaultIsDocumentedExactly(t *testing.T) {
	t.Parallel()
	e := newEnv(nil)
	if got := e.Float("X", 0.125, 0, 1, "x"); got != 0.125 {
		t.Errorf("Float = %v, want the default", got)
	}
	if d := e.vars[0].Default; d != "0.125" {
		t.Errorf("default documented as %q, want 0.125", d)
	}
}

// TestRedactEdges: an '@' at the very start, and a "://" at the very
// start of a string that does not parse as a URL.
func TestRedactEdges(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"@host":         "xxxxx@host",
		"://u:pw@host":  "://xxxxx@host",
		"no-at-all:x/y": "no-at-all:x/y",
	} {
		if got := Redact(raw); got != want {
			t.Errorf("Redact(%q) = %q, want %q", raw, got, want)
		}
	}
}

// TestRepeated: a unit of up to 8 characters repeated, not a string as
// long as the unit, nor a unit of 9.
func TestRepeated(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"abcdefghabcdefgh":   true, // a unit of 8
		"abcdefghabcdefghab": true, // cut short
		"abababababababab":   true,
		"abcdefghiabcdefghi": false, // a unit of 9
		"abcdefg":            false, // no repetition at all
		"a":                  false,
		"Zq8-long-random":    false,
	} {
		if got := repeated(s); got != want {
			t.Errorf("repeated(%q) = %v, want %v", s, got, want)
		}
	}
	if why := WeakSecret("abcdefghabcdefgh"); !strings.Contains(why, "repeated") {
		t.Errorf("WeakSecret of a unit of 8 repeated = %q, want it called repeated", why)
	}
}

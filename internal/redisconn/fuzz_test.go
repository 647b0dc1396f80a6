package redisconn_test

import (
	"strings"
	"testing"

	"taskstack/internal/config"
	"taskstack/internal/redisconn"
)

// FuzzRedisURL builds REDIS_URL from parts with a password in it and runs
// it through both readers: the configuration loader (which checks it before
// anything connects) and redisconn.Resolve (which turns it into go-redis
// options). Neither panics, neither ever puts the password in an error
// (errors reach logs), and every resolved URL names exactly one deployment.
func FuzzRedisURL(f *testing.F) {
	f.Add("redis", "user", "s3cret-Pass", "localhost:6379", "/0")
	f.Add("rediss", "", "s3cret-Pass", "redis.example.com:6380", "/15?dial_timeout=1s")
	f.Add("redis-sentinel", "", "s3cret-Pass", "10.0.0.1:26379,10.0.0.2:26379", "?master=mymaster")
	f.Add("redis-socket", "", "s3cret-Pass", "", "/var/run/redis.sock?db=2")
	f.Add("redis", "", "s3cret-Pass", "host:99999", "/abc")
	f.Add("redis", "us er", "s3cr%et-Pass", "[::1]:6379", "/0#frag")
	f.Add("http", "", "s3cret-Pass", "x", "")
	f.Fuzz(func(t *testing.T, scheme, user, password, host, rest string) {
		raw := scheme + "://" + user + ":" + password + "@" + host + rest
		// A password is one when the URL carries it as user information:
		// written with characters that need no escaping there (others must
		// be percent-encoded, or the URL means something else).
		secret := len(password) >= 6 && plain(password) && plain(user) && !strings.Contains(scheme+user+host+rest, password)

		_, cerr := config.LoadApp(func(k string) string {
			if k == "REDIS_URL" {
				return raw
			}
			return ""
		})
		if cerr != nil && secret && strings.Contains(cerr.Error(), password) {
			t.Fatalf("config error shows the password: %v", cerr)
		}

		// The redactors, also on the URL with its "://" mistyped away.
		for name, redact := range map[string]func(string) string{"redisconn.Redact": redisconn.Redact, "config.Redact": config.Redact} {
			for _, u := range []string{raw, scheme + "//" + user + ":" + password + "@" + host + rest} {
				if got := redact(u); secret && strings.Contains(got, password) {
					t.Fatalf("%s(%q) = %q keeps the password", name, u, got)
				}
			}
		}

		r, err := redisconn.Resolve(redisconn.Options{URL: raw})
		if err != nil {
			if secret && strings.Contains(err.Error(), password) {
				t.Fatalf("Resolve error shows the password: %v", err)
			}
			return
		}
		set := 0
		for _, ok := range []bool{r.Single != nil, r.Sentinel != nil, r.Cluster != nil} {
			if ok {
				set++
			}
		}
		if set != 1 {
			t.Fatalf("%q resolved to %d deployments (mode %s)", raw, set, r.Mode)
		}
		if r.Mode == redisconn.Single && !r.Single.ContextTimeoutEnabled ||
			r.Mode == redisconn.Sentinel && !r.Sentinel.ContextTimeoutEnabled {
			t.Fatalf("%q: context deadlines would not reach Redis", raw)
		}
	})
}

// plain reports whether s needs no percent-encoding in a URL's user
// information.
func plain(s string) bool {
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("-._~!$&'()*+,;=", r):
		default:
			return false
		}
	}
	return true
}

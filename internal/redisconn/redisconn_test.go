package redisconn

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"taskstack/internal/testsupport"
)

func TestResolveModes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		o     Options
		check func(t *testing.T, r Resolved)
	}{
		{"single", Options{URL: "redis://:urlpw@cache:6380/2"}, func(t *testing.T, r Resolved) {
			s := r.Single
			if r.Mode != Single || s.Addr != "cache:6380" || s.DB != 2 || s.Password != "urlpw" || s.TLSConfig != nil || (s.Network != "" && s.Network != "tcp") {
				t.Errorf("%+v", s)
			}
		}},
		{"password overrides the URL's", Options{URL: "redis://:urlpw@cache:6380/0", Password: "secret"}, func(t *testing.T, r Resolved) {
			if r.Single.Password != "secret" {
				t.Errorf("password %q", r.Single.Password)
			}
		}},
		{"tls", Options{URL: "rediss://user:pw@cache:6380/0"}, func(t *testing.T, r Resolved) {
			if r.Single.TLSConfig == nil || r.Single.TLSConfig.ServerName != "cache" || r.Single.Username != "user" {
				t.Errorf("%+v", r.Single)
			}
		}},
		{"socket", Options{URL: "redis-socket:///run/redis.sock"}, func(t *testing.T, r Resolved) {
			if r.Single.Network != "unix" || r.Single.Addr != "/run/redis.sock" {
				t.Errorf("%+v", r.Single)
			}
		}},
		{"sentinel", Options{URL: "redis-sentinel://:sentpw@s1:26379,s2:26379?master=mymaster", Password: "masterpw"}, func(t *testing.T, r Resolved) {
			f := r.Sentinel
			if r.Mode != Sentinel || f.MasterName != "mymaster" || strings.Join(f.SentinelAddrs, ",") != "s1:26379,s2:26379" ||
				f.SentinelPassword != "sentpw" || f.Password != "masterpw" {
				t.Errorf("%+v", f)
			}
		}},
		{"cluster", Options{URL: "rediss://user:urlpw@ignored:6379/0", ClusterAddrs: []string{"n1:6379", "n2:6379"}}, func(t *testing.T, r Resolved) {
			c := r.Cluster
			if r.Mode != Cluster || strings.Join(c.Addrs, ",") != "n1:6379,n2:6379" || c.TLSConfig == nil || c.Username != "user" || c.Password != "urlpw" {
				t.Errorf("%+v", c)
			}
		}},
		{"cluster without URL", Options{ClusterAddrs: []string{"n1:6379"}, Password: "pw"}, func(t *testing.T, r Resolved) {
			if r.Mode != Cluster || r.Cluster.TLSConfig != nil || r.Cluster.Password != "pw" {
				t.Errorf("%+v", r.Cluster)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := Resolve(tt.o)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, r)
			// Every mode: our timeouts, and a context's deadline reaches Redis.
			var timeouts [3]time.Duration
			var ctxTimeout bool
			switch r.Mode {
			case Single:
				timeouts, ctxTimeout = [3]time.Duration{r.Single.DialTimeout, r.Single.ReadTimeout, r.Single.WriteTimeout}, r.Single.ContextTimeoutEnabled
			case Sentinel:
				timeouts, ctxTimeout = [3]time.Duration{r.Sentinel.DialTimeout, r.Sentinel.ReadTimeout, r.Sentinel.WriteTimeout}, r.Sentinel.ContextTimeoutEnabled
			case Cluster:
				timeouts, ctxTimeout = [3]time.Duration{r.Cluster.DialTimeout, r.Cluster.ReadTimeout, r.Cluster.WriteTimeout}, r.Cluster.ContextTimeoutEnabled
			}
			if timeouts != [3]time.Duration{DefaultDialTimeout, DefaultReadTimeout, DefaultWriteTimeout} || !ctxTimeout {
				t.Errorf("timeouts %v, context timeout %v", timeouts, ctxTimeout)
			}
			c := r.NewClient()
			defer c.Close()
			var want string
			switch r.Mode {
			case Single:
				_, ok := c.(*redis.Client)
				want = map[bool]string{true: "ok"}[ok]
			case Sentinel:
				_, ok := c.(*redis.Client) // a failover client is a *redis.Client
				want = map[bool]string{true: "ok"}[ok]
			case Cluster:
				_, ok := c.(*redis.ClusterClient)
				want = map[bool]string{true: "ok"}[ok]
			}
			if want != "ok" {
				t.Errorf("client %T for mode %s", c, r.Mode)
			}
		})
	}
}

func TestResolveErrorsHidePasswords(t *testing.T) {
	t.Parallel()
	for _, o := range []Options{
		{URL: "http://:hunter2-secret@host:6379"},
		{URL: "redis://:hunter2-secret@host:6379/notadb"},
		{URL: "redis://:hunter2-secret@ho st:6379/0"},
		{},
	} {
		_, err := Resolve(o)
		if err == nil {
			t.Errorf("Resolve(%q) accepted", o.URL)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error %q carries the password", err)
		}
	}
	if got := Redact("redis://:hunter2@host:6379/0"); strings.Contains(got, "hunter2") {
		t.Errorf("Redact = %q", got)
	}
}

func TestOpenTalksToRedisWithHooksAndDeadlines(t *testing.T) {
	t.Parallel()
	r := testsupport.StartRedis(t, testsupport.RedisPassword("s3cret-pw"))
	h := &countingHook{}
	c, err := Open(Options{URL: "redis://" + r.Addr + "/0", Password: "s3cret-pw"}, h)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := Ping(context.Background(), c, time.Second); err != nil {
		t.Fatal(err)
	}
	if h.n == 0 {
		t.Error("the hook saw no command")
	}
	// A context deadline shorter than the read timeout wins.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = c.BLPop(ctx, 5*time.Second, "nothing").Err()
	if err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("BLPOP with a 100ms deadline: %v after %s", err, time.Since(start))
	}
	opt, err := ConnOpt(Options{URL: "redis://" + r.Addr + "/0", Password: "s3cret-pw"}, h)
	if err != nil {
		t.Fatal(err)
	}
	c2 := opt.MakeRedisClient().(redis.UniversalClient)
	defer c2.Close()
	before := h.n
	if err := c2.Ping(context.Background()).Err(); err != nil || h.n == before {
		t.Errorf("ConnOpt's client: %v, hook calls %d -> %d", err, before, h.n)
	}
}

type countingHook struct{ n int }

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n++; return next(ctx, cmd) }
}
func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// Package redisconn turns a Redis URL into the go-redis client (and, for
// asynqmon, the asynq connection options) every binary uses, so app, worker
// and monitor reach Redis the same way: single node, Sentinel or Cluster,
// TLS, password. It knows nothing of the environment: callers fill Options.
package redisconn

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// Default timeouts keep a dead Redis from hanging requests.
const (
	DefaultDialTimeout  = 2 * time.Second
	DefaultReadTimeout  = 3 * time.Second
	DefaultWriteTimeout = 3 * time.Second
)

// Options name a Redis deployment and how to talk to it.
type Options struct {
	// URL is redis://, rediss:// (TLS), redis-socket:// or
	// redis-sentinel://host:port,host:port?master=name.
	URL string
	// Password, when set, overrides the one in URL.
	Password string
	// ClusterAddrs, when set, selects Redis Cluster with these seeds; URL
	// then only contributes its scheme (TLS) and user.
	ClusterAddrs []string

	// Zero means the Default* values.
	DialTimeout, ReadTimeout, WriteTimeout time.Duration
	// PoolSize is go-redis's pool size per node (0: its default, 10 per CPU).
	PoolSize int
}

// Mode is the kind of deployment Options name.
type Mode string

// The three deployments.
const (
	Single   Mode = "single"
	Sentinel Mode = "sentinel"
	Cluster  Mode = "cluster"
)

// Resolved is Options turned into go-redis options: exactly one of Single,
// Sentinel and Cluster is set, as Mode says.
type Resolved struct {
	Mode     Mode
	Single   *redis.Options
	Sentinel *redis.FailoverOptions
	Cluster  *redis.ClusterOptions
}

// Resolve parses o. Every client it describes honours its context's
// deadline (ContextTimeoutEnabled), so a request's timeout reaches Redis.
func Resolve(o Options) (Resolved, error) {
	dial := cmpDur(o.DialTimeout, DefaultDialTimeout)
	read := cmpDur(o.ReadTimeout, DefaultReadTimeout)
	write := cmpDur(o.WriteTimeout, DefaultWriteTimeout)

	var parsed asynq.RedisConnOpt
	var user string // asynq v0.26 drops the user of an ACL URL
	if o.URL != "" {
		p, err := asynq.ParseRedisURI(o.URL)
		if err != nil {
			return Resolved{}, fmt.Errorf("redis URL %s: %w", Redact(o.URL), unwrapURLError(err))
		}
		parsed = p
		if u, err := url.Parse(o.URL); err == nil && u.User != nil {
			user = u.User.Username()
		}
	}
	if len(o.ClusterAddrs) > 0 {
		c := &redis.ClusterOptions{
			Addrs: o.ClusterAddrs, Password: o.Password,
			DialTimeout: dial, ReadTimeout: read, WriteTimeout: write,
			PoolSize: o.PoolSize, ContextTimeoutEnabled: true,
		}
		if b, ok := parsed.(asynq.RedisClientOpt); ok {
			c.TLSConfig, c.Username = b.TLSConfig, user
			if c.Password == "" {
				c.Password = b.Password
			}
		}
		return Resolved{Mode: Cluster, Cluster: c}, nil
	}
	switch p := parsed.(type) {
	case asynq.RedisClientOpt:
		s := &redis.Options{
			Network: p.Network, Addr: p.Addr, Username: user, Password: p.Password, DB: p.DB,
			TLSConfig:   p.TLSConfig,
			DialTimeout: dial, ReadTimeout: read, WriteTimeout: write,
			PoolSize: o.PoolSize, ContextTimeoutEnabled: true,
		}
		if o.Password != "" {
			s.Password = o.Password
		}
		return Resolved{Mode: Single, Single: s}, nil
	case asynq.RedisFailoverClientOpt:
		f := &redis.FailoverOptions{
			MasterName: p.MasterName, SentinelAddrs: p.SentinelAddrs, SentinelPassword: p.SentinelPassword,
			Password: p.Password, DB: p.DB, TLSConfig: p.TLSConfig,
			DialTimeout: dial, ReadTimeout: read, WriteTimeout: write,
			PoolSize: o.PoolSize, ContextTimeoutEnabled: true,
		}
		if o.Password != "" {
			f.Password = o.Password
		}
		return Resolved{Mode: Sentinel, Sentinel: f}, nil
	case nil:
		return Resolved{}, errors.New("redis: no URL and no cluster addresses")
	}
	return Resolved{}, fmt.Errorf("redis: unsupported connection options %T", parsed)
}

// NewClient returns a new client for r.
func (r Resolved) NewClient() redis.UniversalClient {
	switch r.Mode {
	case Sentinel:
		return redis.NewFailoverClient(r.Sentinel)
	case Cluster:
		return redis.NewClusterClient(r.Cluster)
	}
	return redis.NewClient(r.Single)
}

// Open returns a client for o with hooks added (hooks see every command).
func Open(o Options, hooks ...redis.Hook) (redis.UniversalClient, error) {
	r, err := Resolve(o)
	if err != nil {
		return nil, err
	}
	c := r.NewClient()
	for _, h := range hooks {
		c.AddHook(h)
	}
	return c, nil
}

// ConnOpt returns asynq connection options that make clients exactly as
// Open does, hooks included, for code that builds its own clients from
// options (asynqmon).
func ConnOpt(o Options, hooks ...redis.Hook) (asynq.RedisConnOpt, error) {
	r, err := Resolve(o)
	if err != nil {
		return nil, err
	}
	return connOpt{r: r, hooks: hooks}, nil
}

type connOpt struct {
	r     Resolved
	hooks []redis.Hook
}

func (c connOpt) MakeRedisClient() any {
	cl := c.r.NewClient()
	for _, h := range c.hooks {
		cl.AddHook(h)
	}
	return cl
}

// Instrument makes every command of c a client span of tp. The caller
// attributes are off: redisotel walks the stack for them on every command,
// sampled or not (~8% of the app's CPU per enqueue in docs/benchmarks.md),
// and the caller it finds is asynq's internals anyway.
//
// A command made under a span that was not sampled gets no span of its own
// (it would not be sampled either): redisotel would otherwise start and end
// one per command for 90% of requests at 10% sampling.
func Instrument(c redis.UniversalClient, tp trace.TracerProvider) error {
	if err := redisotel.InstrumentTracing(c, redisotel.WithTracerProvider(sampledParents{tp: tp}), redisotel.WithDBStatement(false), redisotel.WithCallerEnabled(false)); err != nil {
		return fmt.Errorf("redis tracing: %w", err)
	}
	return nil
}

// Ping checks that Redis answers within timeout.
func Ping(ctx context.Context, c redis.UniversalClient, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis ping: %w", err)
	}
	return nil
}

// Redact hides the password of a Redis URL for errors and logs. A URL
// with an '@' where url.Parse does not look for user information (a typo
// such as "redis//u:pw@host" or "?://u:pw@host" puts it in the path or the
// query) has everything before its last '@' hidden instead.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err == nil && !strings.Contains(u.Opaque+u.Path+u.RawQuery+u.Fragment, "@") {
		return u.Redacted()
	}
	if at := strings.LastIndex(raw, "@"); at >= 0 {
		prefix := ""
		if i := strings.Index(raw, "://"); i >= 0 && i < at {
			prefix = raw[:i+3]
		}
		return prefix + "xxxxx" + raw[at:]
	}
	if err != nil {
		return "(unparsable URL)"
	}
	return raw
}

// unwrapURLError drops url.Error's quoting of the whole URL, password
// included, keeping its cause.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func cmpDur(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// sampledParents is tp, except that its tracers start no span under a
// parent that is valid, not sampled and not recording: they hand back the
// context and the parent, whose End and attribute calls do nothing.
type sampledParents struct {
	embedded.TracerProvider
	tp trace.TracerProvider
}

func (p sampledParents) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return sampledParentTracer{tr: p.tp.Tracer(name, opts...)}
}

type sampledParentTracer struct {
	embedded.Tracer
	tr trace.Tracer
}

func (t sampledParentTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if parent := trace.SpanFromContext(ctx); !parent.IsRecording() {
		if sc := parent.SpanContext(); sc.IsValid() && !sc.IsSampled() {
			return ctx, parent
		}
	}
	return t.tr.Start(ctx, name, opts...)
}

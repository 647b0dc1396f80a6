// Package redisconn turns the configured Redis URL into the go-redis client
// and asynq connection options every binary uses, so app, worker and monitor
// reach Redis the same way (single node, Sentinel or Cluster, TLS, password).
package redisconn

import (
	"context"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"taskstack/internal/config"
)

// Timeouts keep a dead Redis from hanging requests.
const (
	DialTimeout  = 2 * time.Second
	ReadTimeout  = 3 * time.Second
	WriteTimeout = 3 * time.Second
)

// ConnOpt returns asynq's connection options for cfg.
func ConnOpt(cfg config.Redis) (asynq.RedisConnOpt, error) {
	if len(cfg.ClusterAddrs) > 0 {
		o := asynq.RedisClusterClientOpt{
			Addrs: cfg.ClusterAddrs, Password: cfg.Password,
			DialTimeout: DialTimeout, ReadTimeout: ReadTimeout, WriteTimeout: WriteTimeout,
		}
		if cfg.URL != "" {
			base, err := asynq.ParseRedisURI(cfg.URL)
			if err != nil {
				return nil, fmt.Errorf("REDIS_URL: %w", err)
			}
			if b, ok := base.(asynq.RedisClientOpt); ok {
				o.TLSConfig = b.TLSConfig
				o.Username = b.Username
				if o.Password == "" {
					o.Password = b.Password
				}
			}
		}
		return o, nil
	}
	opt, err := asynq.ParseRedisURI(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	switch o := opt.(type) {
	case asynq.RedisClientOpt:
		if cfg.Password != "" {
			o.Password = cfg.Password
		}
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = DialTimeout, ReadTimeout, WriteTimeout
		return o, nil
	case asynq.RedisFailoverClientOpt:
		if cfg.Password != "" {
			o.Password = cfg.Password
		}
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = DialTimeout, ReadTimeout, WriteTimeout
		return o, nil
	}
	return opt, nil
}

// Open returns a go-redis client for cfg. When tp is not nil, every command
// becomes a client span (use it where commands run inside a request, not for
// a worker's idle polling).
func Open(cfg config.Redis, tp trace.TracerProvider) (redis.UniversalClient, error) {
	opt, err := ConnOpt(cfg)
	if err != nil {
		return nil, err
	}
	client, ok := opt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, fmt.Errorf("redis: unexpected client type %T", opt.MakeRedisClient())
	}
	if tp != nil {
		if err := Instrument(client, tp); err != nil {
			_ = client.Close()
			return nil, err
		}
	}
	return client, nil
}

// Instrument makes every command of c a client span of tp. The caller
// attributes are off: redisotel walks the stack for them on every command,
// sampled or not (~8% of the app's CPU per enqueue in docs/benchmarks.md),
// and the caller it finds is asynq's internals anyway.
func Instrument(c redis.UniversalClient, tp trace.TracerProvider) error {
	if err := redisotel.InstrumentTracing(c, redisotel.WithTracerProvider(tp), redisotel.WithDBStatement(false), redisotel.WithCallerEnabled(false)); err != nil {
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

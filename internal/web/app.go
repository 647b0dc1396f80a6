package web

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"taskstack/internal/config"
	"taskstack/internal/redisconn"
	"taskstack/internal/tasks"
)

// App is the app's handler with the Redis connections it owns.
type App struct {
	*Server
	redis     redis.UniversalClient
	client    *asynq.Client
	inspector *asynq.Inspector
}

// NewApp connects to Redis and builds the handler. Close releases the
// connections.
func NewApp(cfg config.App, log *slog.Logger, reg *prometheus.Registry, tp trace.TracerProvider) (*App, error) {
	rc, err := redisconn.Open(cfg.Redis, nil)
	if err != nil {
		return nil, err
	}
	return NewAppWithRedis(cfg, rc, log, reg, tp)
}

// NewAppWithRedis builds the app on an existing client, which it then owns.
// With a tracer provider, the client's commands are traced: the app only
// talks to Redis while serving a request, so each becomes part of its trace.
func NewAppWithRedis(cfg config.App, rc redis.UniversalClient, log *slog.Logger, reg *prometheus.Registry, tp trace.TracerProvider) (*App, error) {
	if tp != nil {
		if err := redisconn.Instrument(rc, tp); err != nil {
			return nil, err
		}
	}
	a := &App{redis: rc, client: asynq.NewClientFromRedisClient(rc), inspector: asynq.NewInspectorFromRedisClient(rc)}
	srv, err := New(Deps{
		Enqueuer:   tasks.NewEnqueuer(a.client, tasks.NewCatalogue(), tp, cfg.Retention),
		Inspector:  a.inspector,
		Redis:      rc,
		Logger:     log,
		Registry:   reg,
		Tracer:     tp,
		Retention:  cfg.Retention,
		MonitorURL: cfg.MonitorURL,
		GrafanaURL: cfg.GrafanaURL,
	})
	if err != nil {
		_ = a.Close()
		return nil, fmt.Errorf("app: %w", err)
	}
	a.Server = srv
	return a, nil
}

// Ping reports whether Redis answers.
func (a *App) Ping(ctx context.Context) error { return a.redis.Ping(ctx).Err() }

// Close releases the Redis connections.
func (a *App) Close() error {
	return a.redis.Close()
}

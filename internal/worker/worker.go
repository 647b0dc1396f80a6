package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"taskstack/internal/config"
	"taskstack/internal/redisconn"
	"taskstack/internal/tasks"
	"taskstack/internal/telemetry"
)

// Catalogue is what the worker needs of the task catalogue: the handlers
// and the type names that bound the metrics' labels.
type Catalogue interface {
	Register(mux *asynq.ServeMux)
	Types() []string
}

// Options builds a Worker.
type Options struct {
	Config    config.Worker
	Redis     redis.UniversalClient
	Catalogue Catalogue
	Logger    *slog.Logger
	Registry  *prometheus.Registry
	Tracer    trace.TracerProvider
}

// Worker is one process's asynq servers plus its admin HTTP handler.
type Worker struct {
	cfg      config.Worker
	redis    redis.UniversalClient
	log      *slog.Logger
	servers  []*asynq.Server
	mux      *asynq.ServeMux
	registry *prometheus.Registry
}

// New builds the servers; nothing runs until Start.
func New(o Options) *Worker {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	queues := make([]string, 0, len(o.Config.Queues))
	for _, q := range tasks.Queues() {
		if _, ok := o.Config.Queues[q]; ok {
			queues = append(queues, q)
		}
	}
	metrics := NewMetrics(o.Registry, o.Catalogue.Types(), queues)
	mux := asynq.NewServeMux()
	var cancelled func(context.Context, string) bool
	if o.Redis != nil {
		cancelled = func(ctx context.Context, id string) bool {
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			n, err := o.Redis.Exists(ctx, tasks.CancelKey(id)).Result()
			return err == nil && n > 0
		}
	}
	mux.Use(Middleware(metrics, o.Tracer, o.Logger, cancelled))
	o.Catalogue.Register(mux)

	w := &Worker{cfg: o.Config, redis: o.Redis, log: o.Logger, mux: mux, registry: o.Registry}
	servers := max(1, o.Config.Servers)
	for range servers {
		w.servers = append(w.servers, asynq.NewServerFromRedisClient(o.Redis, asynq.Config{
			Queues:            o.Config.Queues,
			StrictPriority:    o.Config.StrictPriority,
			Concurrency:       o.Config.Concurrency,
			ShutdownTimeout:   o.Config.ShutdownTimeout,
			TaskCheckInterval: o.Config.TaskCheckInterval,
			Logger:            telemetry.AsynqLogger{L: o.Logger},
			LogLevel:          asynqLevel(o.Logger),
		}))
	}
	return w
}

// asynqLevel follows the logger's level, but never below info: asynq's debug
// lines include one "All queues are empty" per poll (100 a second).
func asynqLevel(l *slog.Logger) asynq.LogLevel {
	ctx := context.Background()
	switch {
	case l.Enabled(ctx, slog.LevelInfo):
		return asynq.InfoLevel
	case l.Enabled(ctx, slog.LevelWarn):
		return asynq.WarnLevel
	}
	return asynq.ErrorLevel
}

// Start starts every dequeue loop.
func (w *Worker) Start() error {
	for i, s := range w.servers {
		if err := s.Start(w.mux); err != nil {
			for _, started := range w.servers[:i] {
				started.Shutdown()
			}
			return fmt.Errorf("start asynq server: %w", err)
		}
	}
	w.log.Info("worker started", slog.Any("queues", w.cfg.Queues), slog.Bool("strict_priority", w.cfg.StrictPriority),
		slog.Int("concurrency", w.cfg.Concurrency), slog.Int("servers", len(w.servers)),
		slog.Duration("task_check_interval", w.cfg.TaskCheckInterval))
	return nil
}

// Shutdown stops fetching, waits up to ShutdownTimeout for in-flight tasks,
// and lets asynq put the unfinished ones back on their queue.
func (w *Worker) Shutdown() {
	for _, s := range w.servers {
		s.Stop() // stop fetching on every loop first
	}
	done := make(chan struct{}, len(w.servers))
	for _, s := range w.servers {
		go func() { s.Shutdown(); done <- struct{}{} }()
	}
	for range w.servers {
		<-done
	}
}

// AdminHandler serves /metrics, /healthz and /readyz.
func (w *Worker) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", telemetry.MetricsHandler(w.registry))
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		_, _ = rw.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, r *http.Request) {
		if err := redisconn.Ping(r.Context(), w.redis, time.Second); err != nil {
			rw.Header().Set("Retry-After", "5")
			http.Error(rw, "redis unavailable", http.StatusServiceUnavailable)
			return
		}
		_, _ = rw.Write([]byte("ready\n"))
	})
	return mux
}

// Run starts the worker and its admin server on ln, and blocks until ctx is
// done; then it drains tasks and stops the admin server last, so /metrics
// can be scraped while the worker drains.
func (w *Worker) Run(ctx context.Context, ln net.Listener) error {
	admin := &http.Server{Handler: w.AdminHandler(), ReadHeaderTimeout: 5 * time.Second}
	adminErr := make(chan error, 1)
	go func() { adminErr <- admin.Serve(ln) }()

	if err := w.Start(); err != nil {
		_ = admin.Close()
		return err
	}
	select {
	case <-ctx.Done():
	case err := <-adminErr:
		w.Shutdown()
		return fmt.Errorf("admin server: %w", err)
	}
	w.log.Info("shutting down: no new tasks; waiting for in-flight ones", slog.Duration("timeout", w.cfg.ShutdownTimeout))
	w.Shutdown()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := admin.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin shutdown: %w", err)
	}
	w.log.Info("worker stopped")
	return nil
}

package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// NewLogger returns a logger writing text or JSON at level; every record
// written with a context inside a span carries trace_id and span_id.
func NewLogger(w io.Writer, format string, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(traceHandler{h})
}

type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(as)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}

// AsynqLogger adapts slog to asynq's Logger interface so asynq's own lines
// go through the same handler and level.
type AsynqLogger struct{ L *slog.Logger }

func (a AsynqLogger) log(level slog.Level, args []any) {
	a.L.Log(context.Background(), level, fmt.Sprint(args...), slog.String("logger", "asynq"))
}

func (a AsynqLogger) Debug(args ...any) { a.log(slog.LevelDebug, args) }
func (a AsynqLogger) Info(args ...any)  { a.log(slog.LevelInfo, args) }
func (a AsynqLogger) Warn(args ...any)  { a.log(slog.LevelWarn, args) }
func (a AsynqLogger) Error(args ...any) { a.log(slog.LevelError, args) }

// Fatal logs at error level. asynq calls it on unrecoverable errors and
// expects the process to end; we leave that decision to main, which sees the
// server stop, rather than calling os.Exit behind deferred cleanup's back.
func (a AsynqLogger) Fatal(args ...any) { a.log(slog.LevelError+4, args) }

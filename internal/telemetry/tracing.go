package telemetry

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracing is a process's tracer provider and propagator, and how to flush
// them. Nothing here is installed globally: components get them passed in.
type Tracing struct {
	Provider   trace.TracerProvider
	Propagator propagation.TextMapPropagator
	shutdown   func(context.Context) error
}

// Enabled reports whether spans are recorded and exported.
func (t *Tracing) Enabled() bool { return t.shutdown != nil }

// Shutdown flushes pending spans; call it last, after the servers stopped.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// Propagator is the W3C TraceContext and Baggage propagator every binary
// uses to carry a trace from HTTP requests into task headers and back out.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// TracingOptions configure SetupTracing.
type TracingOptions struct {
	// Endpoint is the OTLP endpoint; empty turns tracing off (quietly: a
	// no-op provider that still passes incoming trace context through).
	Endpoint string
	// Protocol is "http/protobuf" (the default) or "grpc".
	Protocol string
	Service  string
	Version  string
}

// SetupTracing returns the tracer provider and propagator of one process.
// The OTLP exporter, the sampler and the resource are configured by the
// standard OTEL_* variables, which the SDK reads itself.
func SetupTracing(ctx context.Context, o TracingOptions) (*Tracing, error) {
	if o.Endpoint == "" {
		return &Tracing{Provider: noop.NewTracerProvider(), Propagator: Propagator()}, nil
	}
	exp, err := newExporter(ctx, o.Protocol)
	if err != nil {
		return nil, err
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(o.Service), semconv.ServiceVersion(o.Version)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
		resource.WithHost(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("otel resource: %w", err)
	}
	// The SDK reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG itself.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Tracing{Provider: tp, Propagator: Propagator(), shutdown: tp.Shutdown}, nil
}

func newExporter(ctx context.Context, protocol string) (sdktrace.SpanExporter, error) {
	switch strings.TrimSpace(protocol) {
	case "", "http/protobuf":
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("otlp http exporter: %w", err)
		}
		return exp, nil
	case "grpc":
		exp, err := otlptracegrpc.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("otlp grpc exporter: %w", err)
		}
		return exp, nil
	}
	return nil, fmt.Errorf("OTLP protocol %q is not http/protobuf or grpc", protocol)
}

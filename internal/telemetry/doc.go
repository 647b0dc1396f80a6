// Package telemetry sets up logs, metrics and traces the same way in every
// binary: a slog logger that stamps trace and span IDs on each line, a
// Prometheus registry per process (never the global one) with build info,
// HTTP RED metrics with exemplars, and an OpenTelemetry TracerProvider
// configured only by the standard OTEL_* variables.
package telemetry

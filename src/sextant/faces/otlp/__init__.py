"""OpenTelemetry OTLP/HTTP."""

"""The Datadog face: Product Analytics intake (and, later, queries, metrics and logs)."""

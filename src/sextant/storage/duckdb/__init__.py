"""The embedded default store: one DuckDB file."""

"""The time-series engine: aligned numpy arrays, pure computation."""

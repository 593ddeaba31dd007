"""The write path: batching, group commit, backpressure."""

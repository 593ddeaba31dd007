"""PostHog: capture endpoints authenticated by a project token, and the Metrics API."""

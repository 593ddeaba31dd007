"""Sextant: a self-hostable analytics server that speaks the Datadog, Dynatrace and PostHog APIs."""

__version__ = "0.1.0"

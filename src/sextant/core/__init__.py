"""Vendor-neutral model: events, attributes, time."""

"""Sextant's own API, for what no vendor API covers (segments)."""

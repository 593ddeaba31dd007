"""Dynatrace APIs."""

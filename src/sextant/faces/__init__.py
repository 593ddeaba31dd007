"""Faces: one package per vendor API. A face translates; it never writes SQL or computes statistics."""

"""Bundled datasets for demos and tests (no downloads)."""

"""Shared helpers for tests that run real processes."""

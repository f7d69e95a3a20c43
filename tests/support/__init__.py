"""Reusable helpers for tests."""

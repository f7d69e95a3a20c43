"""Retention classes, legal holds and the purge job."""

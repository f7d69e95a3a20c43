"""Observability: structured, masked logging for every amanat process."""

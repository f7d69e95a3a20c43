"""Versioned configuration files shipped with amanat (retention policies)."""

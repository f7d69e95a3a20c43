"""amanat: open-banking and payments API platform for Pakistan."""

__version__ = "0.1.0"

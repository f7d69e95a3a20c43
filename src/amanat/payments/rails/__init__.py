"""rails."""

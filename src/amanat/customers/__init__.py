"""Customers: the partner API over data subjects (masked by default, revealed with audit)."""

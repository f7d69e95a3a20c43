"""Payments' adapters: the Raast HTTP rail client and its circuit breaker."""

"""Webhook transport: the HTTP side of deliveries."""

"""Webhooks' adapters: the signed HTTP transport to partners' endpoints."""

"""Webhooks' errors, one family under the kernel's DomainError."""

from __future__ import annotations

from amanat.kernel.errors import DomainError, InvalidInput


class WebhooksError(DomainError):
    """Something webhooks refused."""


class InvalidWebhookUrl(WebhooksError, InvalidInput):
    code = "invalid_webhook_url"

"""How webhooks' own objects look to partners (the API and the events embed the same)."""

from __future__ import annotations

from typing import Any

from amanat.kernel.clock import format_timestamp
from amanat.webhooks.domain.endpoints import WebhookEndpoint


def endpoint_view(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """An endpoint without its secrets (the secret is shown once, by the caller)."""
    return {
        "id": endpoint.id,
        "object": "webhook_endpoint",
        "url": endpoint.url,
        "description": endpoint.description,
        "enabled_events": list(endpoint.enabled_events),
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "secret_rotation": {
            "previous_secret_expires_at": format_timestamp(endpoint.previous_secret_expires_at)
        }
        if endpoint.previous_secret_expires_at
        else None,
        "version": endpoint.version,
        "created_at": format_timestamp(endpoint.created_at),
        "updated_at": format_timestamp(endpoint.updated_at),
    }

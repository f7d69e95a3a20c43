"""The caller's IP address, and which proxies may speak for it.

uvicorn believes ``X-Forwarded-For`` from 127.0.0.1 unless told otherwise, so any local
process (or a proxy passing the header through) could choose the address that rate limits
key on and the audit trail records. amanat believes it only from the proxies listed in
``AMANAT_HTTP__TRUSTED_PROXIES`` (none by default), and whatever the address comes from,
only a parsed IP address is used: anything else counts as no address at all.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

from starlette.requests import Request

from amanat.platform.settings import Settings


def uvicorn_proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's ``proxy_headers`` / ``forwarded_allow_ips`` for the configured proxies."""
    trusted = settings.http.trusted_proxies
    # An explicit empty string: uvicorn otherwise falls back to $FORWARDED_ALLOW_IPS or
    # 127.0.0.1, which is exactly the trust this setting exists to withhold.
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": ",".join(trusted)}


@lru_cache(maxsize=4096)
def parsed_ip(value: str | None) -> str | None:
    """``value`` as a normalised IP address, or None when it is not one. Remembered: a
    server sees few distinct peers, and parsing one costs more than the lookup."""
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request: Request) -> str | None:
    """The caller's address as the server established it (after trusted proxies only)."""
    return parsed_ip(request.client.host if request.client else None)

"""Per-request context that every layer of the edge can read (request id, client IP)."""

from __future__ import annotations

import re
from contextvars import ContextVar

from amanat.kernel.ids import new_id

request_id_var: ContextVar[str | None] = ContextVar("amanat_request_id", default=None)

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def accept_or_generate_request_id(client_value: str | None) -> str:
    """Echo a client's id when it is of a safe form, otherwise mint one."""
    if client_value and _SAFE_REQUEST_ID.match(client_value):
        return client_value
    return new_id("request")


def current_request_id() -> str | None:
    return request_id_var.get()

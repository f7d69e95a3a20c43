"""Walking the published OpenAPI document: every operation, and a concrete URL for a path
template. Tests that try every route (scopes, NUL input, the contract) list and fill
routes the same way, so a route the document adds is walked by all of them."""

from __future__ import annotations

import re
from typing import Any

METHODS = frozenset({"get", "post", "put", "patch", "delete"})
PLACEHOLDER = "x_1"  # a well-formed id that names nothing


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every ``(method, path template, operation)`` of the document."""
    return [
        (method, path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def concrete_path(path: str, values: dict[str, str] | None = None) -> str:
    """``path`` with each ``{parameter}`` replaced by its entry in ``values`` (already
    URL-encoded), else by PLACEHOLDER."""
    given = values or {}
    return re.sub(r"\{([^}]+)\}", lambda match: given.get(match.group(1), PLACEHOLDER), path)

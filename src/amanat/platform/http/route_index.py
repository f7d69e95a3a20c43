"""Skip, in one step, each included router that cannot hold the requested path.

FastAPI (0.16x) routes a request by asking every router the app included, in order, whether
one of its routes matches; each router asks each of its routes, and every such question
saves and restores FastAPI's own routing state in the scope. With amanat's dozen
capability routers and some 80 routes, a request to a late route asked about 80 of them and
spent more CPU choosing the route than parsing and validating its body.

:func:`index_included_routers` swaps each router the app included for one that first
checks the request path against its routes' own path patterns, and answers "no match" at
once when none fits; only then does FastAPI's own matching run, unchanged. A path that fits
a pattern takes exactly the old way (405 for the wrong method, redirects, 404s included).
A router holding anything but plain API routes (a mount, a nested router) is never skipped.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette._utils import get_route_path
from starlette.routing import Match
from starlette.types import Scope

try:  # FastAPI's private class for an included router; without it there is nothing to index.
    from fastapi.routing import _IncludedRouter
except ImportError:  # pragma: no cover - a FastAPI that includes routers another way
    _IncludedRouter = None  # type: ignore[assignment,misc]


if _IncludedRouter is not None:

    class IndexedRouter(_IncludedRouter):
        """An included router that refuses, by its path patterns, paths it cannot hold."""

        _indexed_version: int | None = None
        _pattern: re.Pattern[str] | None = None

        def _path_pattern(self) -> re.Pattern[str] | None:
            # Only a router without nested routers is indexed, so its own version number
            # (which FastAPI bumps on every route added or router included) says when the
            # index is stale; FastAPI's recursive version is too slow to ask per request.
            version = self.original_router._routes_version
            if version != self._indexed_version:
                self._pattern = _pattern_of(self.effective_candidates())
                self._indexed_version = version
            return self._pattern

        def matches(self, scope: Scope) -> tuple[Match, Scope]:
            if scope["type"] == "http":
                pattern = self._path_pattern()
                if pattern is not None and pattern.match(get_route_path(scope)) is None:
                    return Match.NONE, {}
            match: tuple[Match, Scope] = super().matches(scope)
            return match


_NAMED_GROUP = re.compile(r"\(\?P<\w+>")


def _pattern_of(candidates: list[Any]) -> re.Pattern[str] | None:
    """One pattern that matches what any candidate's path pattern matches, or None when a
    candidate is not a plain API route. (Group names would clash, so groups lose them.)"""
    patterns = []
    for candidate in candidates:
        if isinstance(candidate, _IncludedRouter) or not isinstance(
            getattr(candidate, "original_route", None), APIRoute
        ):
            return None
        pattern = getattr(candidate, "path_regex", None)
        if not isinstance(pattern, re.Pattern):
            return None
        patterns.append(_NAMED_GROUP.sub("(?:", pattern.pattern))
    return re.compile("|".join(f"(?:{pattern})" for pattern in patterns)) if patterns else None


def index_included_routers(app: FastAPI) -> int:
    """Swap the app's included routers for indexed ones; answers how many were swapped."""
    if _IncludedRouter is None:  # pragma: no cover
        return 0
    swapped = 0
    routes = app.router.routes
    for position, route in enumerate(routes):
        if type(route) is _IncludedRouter:
            routes[position] = IndexedRouter(
                original_router=route.original_router, include_context=route.include_context
            )
            swapped += 1
    return swapped

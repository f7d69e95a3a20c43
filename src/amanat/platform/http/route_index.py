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

Asking each router's pattern in turn still cost a late route (the console's, open
banking's, the health checks') a regular expression per router before it: about 2 us
each, 40 routers. So the first router asked in a request also finds, with one expression
over all of them (:class:`_AppIndex`), the first router whose pattern fits the path (or
that cannot be skipped), and keeps it in the request's scope with the path it was found
for: the routers before it answer "no match" with a comparison, and the routers after it
check their own pattern as before.
"""

from __future__ import annotations

import operator
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


_FIRST_CANDIDATE = "amanat.first_candidate_router"
_NEVER = 1 << 30


if _IncludedRouter is not None:

    class IndexedRouter(_IncludedRouter):
        """An included router that refuses, by its path patterns, paths it cannot hold."""

        _indexed_version: int | None = None
        _pattern: re.Pattern[str] | None = None
        _app_index: _AppIndex | None = None
        _position = 0

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
                app_index = self._app_index
                if app_index is not None:
                    found = scope.get(_FIRST_CANDIDATE)
                    # Kept with the scope's own path string: a redirect check asks a copy
                    # of the scope with another path.
                    if found is None or found[0] is not scope["path"]:
                        found = (scope["path"], app_index.first_candidate(get_route_path(scope)))
                        scope[_FIRST_CANDIDATE] = found
                    if self._position < found[1]:
                        return Match.NONE, {}
                    if self._position == found[1]:
                        return self._own_matches(scope)
                pattern = self._path_pattern()
                if pattern is not None and pattern.match(get_route_path(scope)) is None:
                    return Match.NONE, {}
            return self._own_matches(scope)

        def _own_matches(self, scope: Scope) -> tuple[Match, Scope]:
            match: tuple[Match, Scope] = super().matches(scope)
            return match

    class _AppIndex:
        """Which of an app's indexed routers is the first that may hold a path."""

        def __init__(self, routers: list[IndexedRouter]) -> None:
            self._routers = routers
            self._originals = [router.original_router for router in routers]
            self._versions: tuple[int, ...] | None = None
            self._combined: re.Pattern[str] | None = None
            self._unskippable = _NEVER

        def first_candidate(self, path: str) -> int:
            """The position of the first router whose pattern fits ``path``, or that has
            no pattern; a position past every router when none fits."""
            versions = tuple(map(routes_version, self._originals))
            if versions != self._versions:
                self._rebuild()
                self._versions = versions
            found = self._combined.match(path) if self._combined is not None else None
            position = int(found.lastgroup[1:]) if found and found.lastgroup else _NEVER
            return min(position, self._unskippable)

        def _rebuild(self) -> None:
            parts: list[str] = []
            self._unskippable = _NEVER
            for position, router in enumerate(self._routers):
                pattern = router._path_pattern()
                if pattern is None:
                    self._unskippable = min(self._unskippable, position)
                    continue
                parts.append(f"(?P<r{position}>{pattern.pattern})")
            self._combined = re.compile("|".join(parts)) if parts else None


routes_version = operator.attrgetter("_routes_version")
"""A FastAPI router's own version number, which it bumps on every route added."""
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
    indexed: list[IndexedRouter] = []
    routes = app.router.routes
    for position, route in enumerate(routes):
        if type(route) is _IncludedRouter:
            router = IndexedRouter(
                original_router=route.original_router, include_context=route.include_context
            )
            router._position = len(indexed)
            routes[position] = router
            indexed.append(router)
    app_index = _AppIndex(indexed)
    for router in indexed:
        router._app_index = app_index
    return len(indexed)

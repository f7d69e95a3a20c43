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
banking's, the health checks') a regular expression per router before it, and FastAPI's own
walk over the app's forty-odd top-level routes, even when each answers "no match" with a
comparison, cost a late route about 30 us. So :class:`_TopLevelIndex` holds one expression
over all the app's top-level routes (each router's pattern, each plain route's or mount's
own path pattern) and finds, in one step, the first route that may hold the path (or that
cannot be judged by a pattern), and :class:`_TopLevelDispatch`, in front of FastAPI's walk,
asks that route alone: when it matches fully, the request goes to it exactly as FastAPI's
walk would send it (every route before it cannot match the path); anything else (a wrong
method, a redirect, a 404, a websocket) takes FastAPI's walk unchanged. The position found
is kept in the request's scope with the path it was found for, so the routers asked in that
walk answer "no match" with a comparison.
"""

from __future__ import annotations

import operator
import re
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, APIRouter
from starlette._utils import get_route_path
from starlette.routing import Match, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

try:  # FastAPI's private parts: an included router, and the steps of its routing walk.
    from fastapi.routing import _apply_router_form_limits, _IncludedRouter, _update_scope
    from fastapi.telemetry._api import _route_selected
except ImportError:  # pragma: no cover - a FastAPI that routes another way
    _IncludedRouter = None  # type: ignore[assignment,misc]


_FIRST_CANDIDATE = "amanat.first_candidate_route"
_NEVER = 1 << 30


if _IncludedRouter is not None:

    class IndexedRouter(_IncludedRouter):
        """An included router that refuses, by its path patterns, paths it cannot hold."""

        _indexed_version: int | None = None
        _pattern: re.Pattern[str] | None = None
        _top_index: _TopLevelIndex | None = None
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
                top_index = self._top_index
                if top_index is not None:
                    found = scope.get(_FIRST_CANDIDATE)
                    # Kept with the scope's own path string: a redirect check asks a copy
                    # of the scope with another path.
                    if found is None or found[0] is not scope["path"]:
                        found = (scope["path"], top_index.first_candidate(get_route_path(scope)))
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

    class _TopLevelIndex:
        """Which of an app's top-level routes is the first that may hold a path."""

        def __init__(self, router: APIRouter) -> None:
            self._router = router
            self._built_for: tuple[int, int, int] | None = None
            self._routers: list[APIRouter] = []
            self._combined: re.Pattern[str] | None = None
            self._unskippable = _NEVER

        def first_candidate(self, path: str) -> int:
            """The position of the first top-level route whose pattern fits ``path``, or
            that has no pattern; a position past every route when none fits."""
            if self._fingerprint() != self._built_for:
                self._rebuild()
                self._built_for = self._fingerprint()
            found = self._combined.match(path) if self._combined is not None else None
            position = int(found.lastgroup[1:]) if found and found.lastgroup else _NEVER
            return min(position, self._unskippable)

        def _fingerprint(self) -> tuple[int, int, int]:
            # Adding a route to the app bumps its version; adding one to an included router
            # bumps that router's own. Versions only grow, so their sum changes with any.
            router = self._router
            return (
                router._routes_version,
                len(router.routes),
                sum(map(routes_version, self._routers)),
            )

        def _rebuild(self) -> None:
            parts: list[str] = []
            self._unskippable = _NEVER
            self._routers = []
            for position, route in enumerate(self._router.routes):
                if isinstance(route, IndexedRouter):
                    route._position = position
                    route._top_index = self
                    self._routers.append(route.original_router)
                if self._unskippable < _NEVER:
                    continue  # nothing after a route no pattern can judge is skipped
                pattern = _top_level_pattern(route)
                if pattern is None:
                    self._unskippable = position
                    continue
                parts.append(f"(?P<r{position}>{pattern})")
            self._combined = re.compile("|".join(parts)) if parts else None

    def _top_level_pattern(route: Any) -> str | None:
        """The pattern of the paths a top-level route can match fully or partly, with its
        groups unnamed; None when only the route itself can say (a host, a websocket, a
        router holding more than API routes)."""
        if isinstance(route, IndexedRouter):
            pattern = route._path_pattern()
            return pattern.pattern if pattern is not None else None
        # Starlette's Route and Mount (FastAPI's APIRoute is a Route) match an HTTP request
        # by their path pattern first: a path it refuses is "no match", whatever else.
        if type(route) in (Route, Mount, APIRoute):
            regex = getattr(route, "path_regex", None)
            if isinstance(regex, re.Pattern):
                return NAMED_GROUP.sub("(?:", regex.pattern)
        return None

    class _TopLevelDispatch:
        """In front of FastAPI's routing walk: sends a request straight to the first
        top-level route that may hold its path when that route matches it fully, as the
        walk would; every other request takes the walk."""

        def __init__(self, router: APIRouter, walk: ASGIApp) -> None:
            self._router = router
            self._walk = walk
            self.index = _TopLevelIndex(router)

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                router = self._router
                # The walk's own first steps, which its matching may read.
                _apply_router_form_limits(scope, router.form_limits)
                if "router" not in scope:
                    scope["router"] = router
                path = scope["path"]
                position = self.index.first_candidate(get_route_path(scope))
                scope[_FIRST_CANDIDATE] = (path, position)
                routes = router.routes
                if position < len(routes):
                    route = routes[position]
                    match, child_scope = route.matches(scope)
                    if match == Match.FULL:
                        # The walk's answer to a full match, step for step.
                        _update_scope(scope, child_scope)
                        _route_selected(
                            scope=scope,
                            path=getattr(route, "path_format", None),
                            mount=isinstance(route, Mount),
                        )
                        await route.handle(scope, receive, send)
                        return
            await self._walk(scope, receive, send)


routes_version = operator.attrgetter("_routes_version")
"""A FastAPI router's own version number, which it bumps on every route added."""
# A named group, renamed away where patterns are joined into one (names would clash).
NAMED_GROUP = re.compile(r"\(\?P<\w+>")


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
        patterns.append(NAMED_GROUP.sub("(?:", pattern.pattern))
    return re.compile("|".join(f"(?:{pattern})" for pattern in patterns)) if patterns else None


def index_included_routers(app: FastAPI) -> int:
    """Swap the app's included routers for indexed ones, and put the top-level index in
    front of FastAPI's routing walk; answers how many routers were swapped."""
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
    router = app.router
    # Only in front of the walk itself: router-level middleware (a body limit, say) must
    # see every request, so with any the walk stays as it is.
    if router.middleware_stack == router.app:
        router.middleware_stack = _TopLevelDispatch(router, router.middleware_stack)
    return swapped

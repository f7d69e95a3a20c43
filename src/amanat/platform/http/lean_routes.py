"""A lean way in for the simplest partner calls: FastAPI's route, without its machinery.

A ``GET`` or ``POST`` whose endpoint takes string path parameters, header parameters, at
most one JSON body (a ``POST``), the request and the caller (one
:func:`~amanat.auth.verification.require_scope` dependency), and returns a finished
``Response``, gains nothing from FastAPI's per-request work: solving the dependency tree,
and a chain of some twenty awaiting frames (the exception, exit-stack and routing layers)
that every resumption walks again. Measured in process on a payment read, that work was
about a third of the request's CPU. :class:`LeanRoutes` sits between the contract middleware
and FastAPI's exception layer and serves such a route itself, through the very same parts:

* the route FastAPI would choose: the lean route's own path pattern, and none of the routes
  FastAPI would ask before it (their patterns, for the same method) may fit the path;
* the body read and decoded as FastAPI's request handler reads it (JSON for a JSON
  content type, the raw bytes otherwise, the same ``json_invalid`` error), decoded only
  once: where the contract middleware's strict reading already parsed these bytes, its
  value is the body;
* :func:`~amanat.auth.verification.authenticate_and_limit`, the body of the dependency,
  before any parameter is validated, as FastAPI solves the dependency first;
* FastAPI's own ``request_params_to_args`` and ``request_body_to_args`` for the headers
  and the body, so a validation error is FastAPI's, word for word;
* the endpoint function itself, called with the same arguments; or, for an endpoint
  marked ``amanat_answer_first``, that mark's answer when it gives one, once the caller
  is checked and before any parameter is validated (an idempotent POST's exact retry of
  a remembered completed request: its replay, the answer FastAPI's way also ends in);
* the app's own exception handlers, found the way Starlette finds them.

Any other request (another method, a path FastAPI would route elsewhere, an app served
under a root path) takes FastAPI's way, unchanged.
tests/api/platform/test_lean_routes.py sends the same requests both ways and compares the
answers. No library does this; FastAPI has no per-route fast path.
"""

from __future__ import annotations

import dataclasses
import email.message
import functools
import inspect
import json
import re
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, params
from fastapi._compat import ModelField, Undefined
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.utils import request_body_to_args, request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.telemetry import get_telemetry_data
from starlette._utils import is_async_callable
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from amanat.platform.http.input_guard import CHECKED_JSON_BODY
from amanat.platform.http.route_index import NAMED_GROUP, routes_version

try:
    from fastapi.routing import _IncludedRouter
except ImportError:  # pragma: no cover - a FastAPI that includes routers another way
    _IncludedRouter = None  # type: ignore[assignment,misc]

Guard = Callable[[Request, str, str], Awaitable[Any]]
"""(request, scope, rate-limit policy) -> the caller; what ``require_scope`` runs."""
AnswerFirst = Callable[[Request, Any], Awaitable[Response | None]]
"""(request, caller) -> an answer given before the parameters are validated, or None: what
an endpoint marked ``amanat_answer_first`` offers (an idempotent POST's remembered
replay, platform/idempotency/protocol.py)."""


@dataclass(frozen=True, slots=True)
class _Lean:
    route: APIRoute
    method: str
    pattern: re.Pattern[str]
    earlier: tuple[re.Pattern[str], ...]  # routes of the same method FastAPI asks first
    path_params: tuple[str, ...]
    header_params: tuple[ModelField, ...]
    body_params: tuple[ModelField, ...]  # at most one: the JSON body, not embedded
    strict_content_type: bool
    request_param: str
    caller_param: str
    scope: str
    policy: str
    guard: Guard
    answer_first: AnswerFirst | None = None


def _flat_routes(app: FastAPI) -> list[tuple[Any, re.Pattern[str] | None, APIRoute | None]]:
    """Every route in the order FastAPI asks them: (the route as included, its path
    pattern, the API route)."""
    flat: list[tuple[Any, re.Pattern[str] | None, APIRoute | None]] = []
    for route in app.router.routes:
        if _IncludedRouter is not None and isinstance(route, _IncludedRouter):
            for candidate in route.effective_candidates():
                original = getattr(candidate, "original_route", None)
                pattern = getattr(candidate, "path_regex", None)
                api = original if isinstance(original, APIRoute) else None
                flat.append((candidate, pattern if api is not None else None, api))
        elif isinstance(route, APIRoute):
            flat.append((route, route.path_regex, route))
        else:
            pattern = getattr(route, "path_regex", None) if isinstance(route, Route) else None
            flat.append((route, pattern, None))
    return flat


def _methods(route: BaseRoute) -> set[str] | None:
    original = getattr(route, "original_route", route)
    methods = getattr(original, "methods", None)
    return set(methods) if methods is not None else None


def _lean(included: Any, route: APIRoute, pattern: re.Pattern[str]) -> _Lean | None:
    """The route as a lean route, or None when it is not of the simple shape. ``included``
    is the route as its router was included: dependencies given to ``include_router``
    live there, not on the route. Anything the lean way would not do as FastAPI does
    (run a sync endpoint in a thread, validate a constrained path parameter, apply a body
    limit, add scopes to the caller's check, answer through a route class's own handler,
    as the open-banking and console routes do) keeps the route on FastAPI's way."""
    if type(route) is not APIRoute or route.methods not in ({"GET"}, {"POST"}):
        return None
    if route.dependencies or getattr(included, "dependencies", None):
        return None
    if getattr(route, "max_body_size", None) is not None:
        return None
    if getattr(included, "max_body_size", None) is not None:
        return None
    if not inspect.iscoroutinefunction(route.endpoint):
        return None
    dependant = getattr(included, "dependant", None) or route.dependant
    (method,) = route.methods
    if (
        dependant.query_params
        or dependant.cookie_params
        or dependant.background_tasks_param_name
        or dependant.response_param_name
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.security_scopes_param_name
        or dependant.request_param_name is None
        or len(dependant.dependencies) != 1
    ):
        return None
    body_params = tuple(dependant.body_params)
    if body_params:
        # One JSON body, the whole document (not embedded under its name), on a POST.
        body_field = getattr(included, "body_field", route.body_field)
        embedded = getattr(included, "_embed_body_fields", route._embed_body_fields)
        if method != "POST" or len(body_params) != 1 or embedded or body_field is None:
            return None
        if isinstance(body_params[0].field_info, params.Form | params.File):
            return None
    strict = getattr(included, "strict_content_type", route.strict_content_type)
    if isinstance(strict, DefaultPlaceholder):
        strict = strict.value
    names = {field.name for field in dependant.path_params}
    for field in dependant.path_params:
        info = field.field_info
        if info.annotation is not str or info.metadata or info.alias not in (None, field.name):
            return None
    # The pattern the request is matched with (the included path, its prefix too) must
    # name exactly the endpoint's path parameters, each a plain segment.
    if set(pattern.groupindex) != names or any(
        f"(?P<{name}>[^/]+)" not in pattern.pattern for name in names
    ):
        return None
    caller = dependant.dependencies[0]
    call = caller.call
    # Only the very dependency require_scope made: a wrapper (functools.wraps copies the
    # marks) or added scopes would check more than the guard does.
    if getattr(call, "amanat_guard_for", None) is not call:
        return None
    if caller.own_oauth_scopes or caller.parent_oauth_scopes or caller.dependencies[1:]:
        return None
    guard: Guard | None = getattr(call, "amanat_guard", None)
    needed = getattr(call, "amanat_scope", None)
    policy = getattr(call, "amanat_policy", None)
    if guard is None or not isinstance(needed, str) or not isinstance(policy, str):
        return None
    if not caller.name:
        return None
    try:
        returns = typing.get_type_hints(route.endpoint).get("return")
    except Exception:  # noqa: BLE001 - an annotation it cannot resolve: not lean
        return None
    if not (isinstance(returns, type) and issubclass(returns, Response)):
        return None
    return _Lean(
        route=route,
        method=method,
        pattern=pattern,
        earlier=(),
        path_params=tuple(field.name for field in dependant.path_params),
        header_params=tuple(dependant.header_params),
        body_params=body_params,
        strict_content_type=bool(strict),
        request_param=dependant.request_param_name,
        caller_param=caller.name,
        scope=needed,
        policy=policy,
        guard=guard,
        answer_first=getattr(route.endpoint, "amanat_answer_first", None),
    )


LEAN_METHODS = ("GET", "POST")


def find_lean_routes(app: FastAPI) -> list[_Lean]:
    found: list[_Lean] = []
    asked_before: dict[str, list[re.Pattern[str] | None]] = {m: [] for m in LEAN_METHODS}
    for route, pattern, api in _flat_routes(app):
        methods = _methods(route)
        if api is not None and pattern is not None:
            lean = _lean(route, api, pattern)
            if lean is not None and None not in asked_before[lean.method]:
                earlier = tuple(p for p in asked_before[lean.method] if p is not None)
                found.append(dataclasses.replace(lean, earlier=earlier))
        for method in LEAN_METHODS:
            if methods is None or method in methods:
                # A mount or anything without a pattern: nothing after it can be lean.
                asked_before[method].append(pattern)
    return found


def _by_method(routes: list[_Lean]) -> dict[str, tuple[re.Pattern[str], list[_Lean]]]:
    """Each method's lean routes, in order, with one pattern that fits any path one of them
    fits (groups lose their names, which would clash)."""
    grouped: dict[str, list[_Lean]] = {}
    for lean in routes:
        grouped.setdefault(lean.method, []).append(lean)
    return {
        method: (
            re.compile(
                "|".join(f"(?:{NAMED_GROUP.sub('(?:', lean.pattern.pattern)})" for lean in leans)
            ),
            leans,
        )
        for method, leans in grouped.items()
    }


class LeanRoutes:
    def __init__(self, app: ASGIApp, *, fastapi_app: FastAPI) -> None:
        self.app = app
        self._fastapi = fastapi_app
        # As Starlette's exception layer holds them: copied when the app's middleware stack
        # is built (this layer is built with it), so a handler added later applies to
        # neither way.
        self._handlers: dict[Any, Any] = dict(fastapi_app.exception_handlers)
        self._version: tuple[int, int, int] | None = None
        self._routes: list[_Lean] = []
        self._included: list[Any] = []  # the app's included routers, as last seen
        # By method: one pattern any of its lean routes fits, and the routes in order.
        self._by_method: dict[str, tuple[re.Pattern[str], list[_Lean]]] = {}
        self.served = 0

    def _current(self) -> list[_Lean]:
        if self._fingerprint() != self._version:
            self._routes = find_lean_routes(self._fastapi)
            self._by_method = _by_method(self._routes)
            self._included = [
                route.original_router
                for route in self._fastapi.router.routes
                if _IncludedRouter is not None and isinstance(route, _IncludedRouter)
            ]
            self._version = self._fingerprint()
        return self._routes

    def _fingerprint(self) -> tuple[int, int, int]:
        # Asked on every request, so cheap, as the route index's (route_index.py): versions
        # only grow, and FastAPI bumps them on every route added or router included.
        router = self._fastapi.router
        return (
            router._routes_version,
            len(router.routes),
            sum(map(routes_version, self._included)),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"] if scope["type"] == "http" else None
        if (
            method in LEAN_METHODS
            and not scope.get("root_path")
            # A body limit of FastAPI's own (max_body_size) is FastAPI's to enforce.
            and MAX_BODY_SIZE_SCOPE_KEY not in scope
            and getattr(self._fastapi.state, "lean_routes", True)
            # An override replaces a dependency for FastAPI's way (tests do): honour it.
            and not self._fastapi.dependency_overrides
            # FastAPI's own OpenTelemetry, where an app turns it on (amanat's does not:
            # platform/http/app.py), records the route, its operations and failed
            # validations on FastAPI's way only.
            and get_telemetry_data() is None
        ):
            path = scope["path"]
            self._current()
            # Most requests fit no lean route: one expression says so for all of them.
            any_of, leans = self._by_method.get(method, (None, ()))
            for lean in leans if any_of is not None and any_of.match(path) else ():
                found = lean.pattern.match(path)
                if found is not None:
                    if any(earlier.match(path) for earlier in lean.earlier):
                        break
                    await self._serve(lean, found.groupdict(), scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _serve(
        self, lean: _Lean, params: dict[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        self.served += 1
        route = lean.route
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = params
        request = Request(scope, receive)
        try:
            body = await _body(request, lean) if lean.body_params else Undefined
            caller = await lean.guard(request, lean.scope, lean.policy)
            early = None if lean.answer_first is None else await lean.answer_first(request, caller)
            if early is not None:
                response = early
            else:
                response = await _endpoint(lean, request, params, body, caller)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            if is_async_callable(handler):
                answered = await handler(request, exc)
            else:
                answered = await run_in_threadpool(handler, request, exc)
            if answered is None:
                return
            response = answered
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> Callable[[Request, Exception], Any] | None:
        """The app's handler for ``exc``, as Starlette's exception layer finds it (500 and
        ``Exception`` belong to the outermost layer, not that one)."""
        handlers = self._handlers
        if (
            isinstance(exc, HTTPException)
            and exc.status_code in handlers
            and exc.status_code != 500
        ):
            found: Callable[[Request, Exception], Any] = handlers[exc.status_code]
            return found
        for kind in type(exc).__mro__:
            if kind in handlers and kind is not Exception:
                handler: Callable[[Request, Exception], Any] = handlers[kind]
                return handler
        return None


async def _endpoint(
    lean: _Lean, request: Request, params: dict[str, str], body: Any, caller: Any
) -> Response:
    """The endpoint's answer, its headers and body validated as FastAPI validates them."""
    values: dict[str, Any] = {}
    errors: list[Any] = []
    if lean.header_params:
        values, errors = request_params_to_args(lean.header_params, request.headers)
    if lean.body_params:
        body_values, body_errors = await request_body_to_args(
            body_fields=list(lean.body_params),
            received_body=body,
            embed_body_fields=False,
        )
        values.update(body_values)
        errors.extend(body_errors)
    if errors:
        raise RequestValidationError(errors, body=None if body is Undefined else body)
    route = lean.route
    response = await route.endpoint(
        **params, **values, **{lean.request_param: request, lean.caller_param: caller}
    )
    if not isinstance(response, Response):
        raise TypeError(f"{route.path}: a lean route must return a Response")
    return response


async def _body(request: Request, lean: _Lean) -> Any:
    """The body as FastAPI's request handler reads it: decoded JSON when the content type
    is JSON (or, with strict content types off, when there is none), the bytes otherwise,
    ``Undefined`` when empty; the same errors when it cannot be read."""
    try:
        raw = await request.body()
        if not raw:
            return Undefined
        content_type = request.headers.get("content-type")
        if not content_type:
            return raw if lean.strict_content_type else await _json(request, raw)
        if _is_json_media(content_type):
            return await _json(request, raw)
        return raw
    except json.JSONDecodeError as exc:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", exc.pos),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": exc.msg},
                }
            ],
            body=exc.doc,
        ) from exc
    except HTTPException:
        raise
    except Exception as exc:  # FastAPI answers any other failed read with this 400
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from exc


async def _json(request: Request, raw: bytes) -> Any:
    """The JSON body, decoded once: the contract middleware's strict reading of these very
    bytes when it made one (input_guard.CHECKED_JSON_BODY: equal to what ``json.loads``
    reads from a body that passed it), else ``request.json()``, as FastAPI reads it."""
    checked = request.scope.get(CHECKED_JSON_BODY)
    if checked is not None and checked[0] == raw:
        return checked[1]
    return await request.json()


@functools.lru_cache(maxsize=64)
def _is_json_media(content_type: str) -> bool:
    """FastAPI's test of a JSON content type, remembered per header value: partners send
    the same one or two, and parsing it as a MIME header costs more than decoding a small
    body."""
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")

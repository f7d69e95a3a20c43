"""Which routes the lean way in takes: only the simple shape it serves exactly as FastAPI
would. Anything FastAPI would do more or otherwise (dependencies of the inclusion, a
wrapped or widened scope check, a sync endpoint, a constrained or prefixed path
parameter, a connection parameter) keeps the route on FastAPI's way."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Request, Security
from starlette.requests import HTTPConnection
from starlette.responses import Response

from amanat.platform.http.lean_routes import find_lean_routes


async def _guard(request: Request, scope: str, policy: str) -> str:
    return "caller"


def _caller() -> Callable[..., Any]:
    """A dependency marked as require_scope marks its own."""

    async def caller(request: Request) -> str:
        return "caller"

    caller.amanat_guard_for = caller  # type: ignore[attr-defined]
    caller.amanat_guard = _guard  # type: ignore[attr-defined]
    caller.amanat_scope = "things:read"  # type: ignore[attr-defined]
    caller.amanat_policy = "read"  # type: ignore[attr-defined]
    return caller


CALLER = _caller()


def _router() -> APIRouter:
    things = APIRouter()

    @things.get("/things/{thing_id}")
    async def thing(thing_id: str, request: Request, who: str = Depends(CALLER)) -> Response:
        return Response(thing_id)

    return things


def _lean_paths(app: FastAPI) -> list[str]:
    return [lean.pattern.pattern for lean in find_lean_routes(app)]


def test_the_simple_shape_is_lean_with_its_prefix() -> None:
    plain, routed = FastAPI(), FastAPI()
    plain.include_router(_router())
    routed.include_router(_router(), prefix="/v2")
    assert _lean_paths(plain) == ["^/things/(?P<thing_id>[^/]+)$"]
    assert _lean_paths(routed) == ["^/v2/things/(?P<thing_id>[^/]+)$"]


def test_dependencies_of_the_inclusion_keep_it_on_fastapis_way() -> None:
    async def gate() -> None:
        raise HTTPException(403)

    gated = FastAPI()
    gated.include_router(_router(), dependencies=[Security(gate)])
    assert _lean_paths(gated) == []


def test_a_wrapped_or_widened_scope_check_keeps_it_on_fastapis_way() -> None:
    @functools.wraps(CALLER)
    async def live_only(request: Request) -> str:  # copies the marks, checks more
        raise HTTPException(403)

    app = FastAPI()

    @app.get("/wrapped/{x}")
    async def wrapped(x: str, request: Request, who: str = Depends(live_only)) -> Response:
        return Response(x)

    @app.get("/widened/{x}")
    async def widened(
        x: str, request: Request, who: str = Security(CALLER, scopes=["admin"])
    ) -> Response:
        return Response(x)

    assert _lean_paths(app) == []


def test_other_shapes_keep_it_on_fastapis_way() -> None:
    app = FastAPI()

    @app.get("/sync/{x}")
    def sync(x: str, request: Request, who: str = Depends(CALLER)) -> Response:
        return Response(x)

    @app.get("/short/{x}")
    async def short(
        x: Annotated[str, Path(max_length=3)], request: Request, who: str = Depends(CALLER)
    ) -> Response:
        return Response(x)

    @app.get("/conn/{x}")
    async def conn(
        x: str, request: Request, connection: HTTPConnection, who: str = Depends(CALLER)
    ) -> Response:
        return Response(x)

    @app.get("/dict/{x}")
    async def as_dict(x: str, request: Request, who: str = Depends(CALLER)) -> dict[str, str]:
        return {"x": x}

    tenants = APIRouter()

    @tenants.get("/things/{x}")
    async def tenant_thing(x: str, request: Request, who: str = Depends(CALLER)) -> Response:
        return Response(x)

    app.include_router(tenants, prefix="/t/{tenant}")
    assert _lean_paths(app) == []

"""Which routes the lean way in takes: only the simple shape, and never one whose router
was included with dependencies of its own (they live on the inclusion, not the route)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI, Request, Security
from starlette.responses import Response

from amanat.platform.http.lean_routes import find_lean_routes


def test_a_route_with_dependencies_of_its_inclusion_is_never_lean() -> None:
    async def guard(request: Request) -> str:
        return "caller"

    async def caller(request: Request) -> str:
        return "caller"

    caller.amanat_guard = guard  # type: ignore[attr-defined]
    caller.amanat_scope = "things:read"  # type: ignore[attr-defined]
    caller.amanat_policy = "read"  # type: ignore[attr-defined]

    async def gate() -> None:
        return None

    def router() -> APIRouter:
        things = APIRouter()

        @things.get("/things/{thing_id}")
        async def thing(thing_id: str, request: Request, who: str = Depends(caller)) -> Response:
            return Response(thing_id)

        return things

    plain, gated, routed = FastAPI(), FastAPI(), FastAPI()
    plain.include_router(router())
    gated.include_router(router(), dependencies=[Security(gate)])
    routed.include_router(APIRouter(dependencies=[Depends(gate)]))
    routed.include_router(router(), prefix="/v2")
    assert [lean.route.path for lean in find_lean_routes(plain)] == ["/things/{thing_id}"]
    assert find_lean_routes(gated) == []
    assert [lean.pattern.pattern for lean in find_lean_routes(routed)] == [
        "^/v2/things/(?P<thing_id>[^/]+)$"
    ]

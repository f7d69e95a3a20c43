"""The token-signing key ring and its rotation."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from amanat.auth.ports import SigningKeyRing
from amanat.auth.signing_keys import SigningKeyService
from amanat.console.routes.common import (
    P,
    Session,
    console_router,
    render,
    require,
    see_other,
)
from amanat.identity.sessions import operator_actor
from amanat.platform.http.services import find_service

router = console_router()


@router.get("/keys")
async def signing_keys(request: Request, session: Session) -> Response:
    require(session, P.KEYS_ROTATE)
    keys = await find_service(request, SigningKeyService).keys()
    return render(request, "console/keys.html", keys=list(reversed(keys)))


@router.post("/keys/rotate")
async def rotate_signing_key(request: Request, session: Session) -> Response:
    require(session, P.KEYS_ROTATE)
    await find_service(request, SigningKeyService).rotate(operator_actor(request, session))
    await find_service(request, SigningKeyRing).refresh(force=True)
    return see_other("/console/keys")

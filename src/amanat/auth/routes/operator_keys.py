"""The operator API's view of the token-signing keys: list them, rotate the active one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Security
from pydantic import Field

from amanat.auth.ports import SigningKeyRing
from amanat.auth.signing_keys import SigningKeyService
from amanat.identity.access import Permission
from amanat.identity.services.operators import OperatorSession
from amanat.identity.sessions import operator_actor, require_permission, session_cookie
from amanat.kernel.clock import format_timestamp
from amanat.platform.http.schemas import ListResponse, ResponseModel
from amanat.platform.http.services import find_service

router = APIRouter(
    prefix="/operator/v1", tags=["operator"], dependencies=[Security(session_cookie)]
)
P = Permission


class SigningKeyOut(ResponseModel):
    kid: str
    alg: str
    status: str = Field(description="`active` signs; the others only verify.")
    encrypted: bool
    created_at: str
    retire_after: str | None


class RotatedKeysOut(ResponseModel):
    active: str = Field(description="The new signing key's `kid`.")
    verifying: list[str]


@router.get(
    "/signing_keys",
    response_model=ListResponse[SigningKeyOut],
    summary="The token-signing key ring",
)
async def signing_keys(
    request: Request,
    _session: Annotated[OperatorSession, Depends(require_permission(P.KEYS_ROTATE))],
) -> dict[str, Any]:
    """The keys that sign and verify access tokens: the `active` one and those still
    `verifying` tokens they signed. Private keys never leave the server.

    Session cookie and permission `keys.rotate`.
    """
    keys = await find_service(request, SigningKeyService).keys()
    return {
        "object": "list",
        "has_more": False,
        "next_cursor": None,
        "data": [
            {
                "kid": k.kid,
                "alg": k.alg,
                "status": k.status,
                "encrypted": k.encrypted,
                "created_at": format_timestamp(k.created_at),
                "retire_after": format_timestamp(k.retire_after) if k.retire_after else None,
            }
            for k in reversed(keys)
        ],
    }


@router.post(
    "/signing_keys/rotate", response_model=RotatedKeysOut, summary="Rotate the token-signing key"
)
async def rotate_signing_key(
    request: Request,
    session: Annotated[OperatorSession, Depends(require_permission(P.KEYS_ROTATE))],
) -> dict[str, Any]:
    """Creates a new active signing key; the previous one keeps verifying the tokens it
    signed until they expire. Answers the new `kid` and the verifying ones.

    Session cookie, `X-CSRF-Token` and permission `keys.rotate`.
    """
    new_key, demoted = await find_service(request, SigningKeyService).rotate(
        operator_actor(request, session)
    )
    await find_service(request, SigningKeyRing).refresh(force=True)
    return {"active": new_key.kid, "verifying": [k.kid for k in demoted]}

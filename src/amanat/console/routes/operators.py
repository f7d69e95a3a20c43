"""The people who operate amanat: list and add operators."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from amanat.console.routes.common import (
    P,
    Session,
    console_router,
    render,
    require,
    text_field,
    text_fields,
)
from amanat.identity.access import OperatorRole
from amanat.identity.queries import IdentityQueries
from amanat.identity.services.operators import NewOperator, OperatorService
from amanat.identity.sessions import operator_actor
from amanat.kernel.errors import DomainError
from amanat.platform.http.errors import domain_error_status
from amanat.platform.http.services import find_service

router = console_router()


async def _operators_page(
    request: Request,
    *,
    status: int = 200,
    created: NewOperator | None = None,
    section_error: str | None = None,
    form_values: Mapping[str, Any] | None = None,
) -> Response:
    operators = await find_service(request, IdentityQueries).operators()
    return render(
        request,
        "console/operators.html",
        status=status,
        operators=operators,
        created=created,
        section_error=section_error,
        operator_roles=[r.value for r in OperatorRole],
        form=dict(form_values or {"email": "", "name": "", "roles": []}),
    )


@router.get("/operators")
async def operators(request: Request, session: Session) -> Response:
    require(session, P.OPERATORS_READ)
    return await _operators_page(request)


@router.post("/operators")
async def create_operator(request: Request, session: Session) -> Response:
    require(session, P.OPERATORS_WRITE)
    form = await request.form()
    email = text_field(form, "email")
    name = text_field(form, "name")
    roles = text_fields(form, "roles")
    password = text_field(form, "password", strip=False)
    values = {"email": email[:254], "name": name[:200], "roles": roles}
    error: str | None = None
    status = 422
    if not 3 <= len(email) <= 254:
        error = "Enter the operator's email address."
    elif not 1 <= len(name) <= 200:
        error = "Enter the operator's name (at most 200 characters)."
    elif not 1 <= len(roles) <= len(OperatorRole):
        error = "Choose at least one role."
    elif not 12 <= len(password) <= 1024:
        error = "The initial password needs at least 12 characters."
    else:
        try:
            created = await find_service(request, OperatorService).create_operator(
                operator_actor(request, session),
                email=email,
                name=name,
                roles=roles,
                password=password,
            )
        except DomainError as exc:
            error, status = exc.message, domain_error_status(exc)
        else:
            return await _operators_page(request, status=201, created=created)
    return await _operators_page(request, status=status, section_error=error, form_values=values)

"""A full partner journey with known personal values and secrets: no log line and no
response may carry any of them in clear (the owner's own responses show its customers'
names, and identifiers masked; clear identifiers only come from the audited reveal)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi import APIRouter
from tests.support.oauth import make_client

from amanat.app import create_app
from amanat.bootstrap import Container
from amanat.platform.observability.logging import configure_logging

IBAN = "PK36SCBL0000001123456702"
CNIC = "35202-1234567-3"
PHONE_LOCAL = "03001234567"
PHONE = "+923001234567"
NAME = "Ayesha Khan"


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging(json=True, level="DEBUG", stream=stream)
    try:
        yield stream
    finally:
        configure_logging(json=False, level="INFO")
        logging.getLogger().setLevel(logging.WARNING)


def _boom_router() -> APIRouter:
    router = APIRouter()

    @router.get("/v1/_test/explode")
    async def explode() -> None:
        raise RuntimeError(f"core said: account {IBAN} of CNIC {CNIC} phone {PHONE_LOCAL}")

    return router


async def test_no_clear_personal_data_or_secret_in_logs_or_foreign_responses(
    container: Container, captured_logs: io.StringIO
) -> None:
    app = create_app(container=container)
    app.include_router(_boom_router())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    merchant = await make_client(container, name="Shop")
    assert merchant.secret is not None
    secrets = [merchant.secret]
    foreign: list[httpx.Response] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        token_response = await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(merchant.id, merchant.secret),
        )
        token = token_response.json()["access_token"]
        secrets.append(token)
        auth = {"Authorization": f"Bearer {token}", "X-Request-Id": f"cnic-{CNIC}"}
        body = {"name": NAME, "iban": IBAN, "raast_id": PHONE_LOCAL, "cnic": CNIC}
        own = await http.post("/v1/customers", json=body, headers=auth | {"Idempotency-Key": "a"})
        assert own.status_code == 201 and own.json()["iban_last4"] == IBAN[-4:]
        replay = await http.post(
            "/v1/customers", json=body, headers=auth | {"Idempotency-Key": "a"}
        )
        assert replay.status_code == 201
        found = await http.get("/v1/customers", params={"cnic": CNIC}, headers=auth)
        assert found.status_code == 200
        read = await http.get(f"/v1/customers/{own.json()['id']}", headers=auth)
        assert read.status_code == 200
        owners = [own, replay, found, read]
        # Error paths must not echo what was sent.
        foreign.append(
            await http.post(
                "/v1/customers",
                json=body | {"iban": IBAN[:-1] + "3"},
                headers=auth | {"Idempotency-Key": "b"},
            )
        )
        foreign.append(
            await http.post(
                "/v1/customers",
                json=body | {"cnic": "1234"},
                headers=auth | {"Idempotency-Key": "c"},
            )
        )
        foreign.append(
            await http.post(
                "/v1/customers",
                json=body | {"name": "Other Person"},
                headers=auth | {"Idempotency-Key": "a"},
            )
        )
        foreign.append(await http.get("/v1/_test/explode", headers=auth))
        foreign.append(
            await http.get(
                "/v1/customers",
                params={"iban": IBAN},
                headers={"Authorization": f"Bearer {token}x"},
            )
        )
        foreign.append(
            await http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(merchant.id, merchant.secret + "x"),
            )
        )
        revoke = await http.post(
            "/oauth/revoke", data={"token": token}, auth=(merchant.id, merchant.secret)
        )
        assert revoke.status_code == 200
        foreign.append(await http.get("/v1/customers", params={"iban": IBAN}, headers=auth))
    logging.getLogger("uvicorn.error").error("client sent Authorization: Bearer %s", token)

    logs = captured_logs.getvalue()
    assert "http_request" in logs and "unhandled_exception" in logs, "the journey was logged"
    clear_values = [
        IBAN,
        CNIC,
        CNIC.replace("-", ""),
        PHONE,
        PHONE_LOCAL,
        "3001234567",
        NAME,
        *secrets,
    ]
    for value in clear_values:
        assert value not in logs, f"{value[:12]}… leaked into the logs"
    for response in foreign:
        assert response.status_code >= 400
        # The caller's own X-Request-Id is echoed back to the caller by contract; what
        # must never come back is what they sent in the body, query or credentials.
        text = response.text.replace(f"cnic-{CNIC}", "")
        for value in clear_values:
            assert value not in text, f"{value[:12]}… echoed in {response.status_code}"
    identifiers = [v for v in clear_values if v != NAME]
    for response in owners:
        for value in identifiers:
            assert value not in response.text, f"{value[:12]}… in the owner's own response"
    assert foreign[3].status_code == 500 and foreign[3].json()["code"] == "internal_error"
    assert "PK**SCBL************6702" in logs, "the masked form keeps what support needs"

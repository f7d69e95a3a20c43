"""Reading OAuth requests: form bodies and client credentials, strictly (RFC 6749 §3.2)."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_plus

from fastapi import Request

from amanat.auth.errors import OAuthError
from amanat.auth.service import JWT_BEARER_ASSERTION, ClientCredentials

MAX_FORM_FIELD = 8192


async def read_form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "Send parameters as application/x-www-form-urlencoded.")
    form = await request.form()
    values: dict[str, str] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            raise OAuthError("invalid_request", f"Parameter '{key[:40]}' must be text.")
        if key in values:
            raise OAuthError("invalid_request", f"Parameter '{key[:40]}' is repeated.")
        if len(value) > MAX_FORM_FIELD:
            raise OAuthError("invalid_request", f"Parameter '{key[:40]}' is too large.")
        values[key] = value
    return values


def client_credentials(request: Request, form: dict[str, str]) -> ClientCredentials:
    header = request.headers.get("authorization")
    methods: list[ClientCredentials] = []
    if header:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            raise OAuthError(
                "invalid_client",
                "Only HTTP Basic client authentication is accepted in the Authorization header.",
            )
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError("invalid_client", "Malformed Basic credentials.") from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise OAuthError("invalid_client", "Malformed Basic credentials.")
        methods.append(
            ClientCredentials(
                "client_secret_basic", unquote_plus(client_id), secret=unquote_plus(secret)
            )
        )
    if "client_assertion" in form or "client_assertion_type" in form:
        assertion = form.get("client_assertion", "")
        assertion_client = form.get("client_id")  # else the service reads the subject
        methods.append(
            ClientCredentials(
                "private_key_jwt",
                assertion_client,
                assertion=assertion,
                assertion_type=form.get("client_assertion_type"),
            )
        )
    if "client_secret" in form:
        methods.append(
            ClientCredentials(
                "client_secret_post", form.get("client_id"), secret=form["client_secret"]
            )
        )
    if len(methods) > 1:
        raise OAuthError("invalid_request", "Use exactly one client authentication method.")
    if methods:
        presented = methods[0]
        if form.get("client_id") and presented.client_id != form["client_id"]:
            raise OAuthError("invalid_request", "client_id does not match the credentials.")
        return presented
    return ClientCredentials(None, form.get("client_id"))


__all__ = ["JWT_BEARER_ASSERTION", "client_credentials", "read_form"]

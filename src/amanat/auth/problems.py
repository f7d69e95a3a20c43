"""The authorization server's problem codes (the ``oauth_`` family of the token endpoint),
registered by its wiring."""

from __future__ import annotations

from amanat.platform.http.problems import ProblemType

PROBLEMS: list[ProblemType] = [
    ProblemType(
        "psu_authentication_not_configured",
        501,
        "PSU authentication not configured",
        "In production the customer must log in at the bank; amanat's sandbox page is disabled.",
        "Integrate the bank's login in front of /oauth/authorize.",
    ),
]

for _error, _text in [
    ("invalid_request", "The request is missing a parameter, repeats one, or is malformed."),
    ("invalid_client", "Client authentication failed."),
    (
        "invalid_grant",
        "The code, refresh token or credentials are invalid, expired, revoked "
        "or were issued to another client.",
    ),
    ("unauthorized_client", "This client may not use this grant type."),
    ("unsupported_grant_type", "The grant type is not supported."),
    ("invalid_scope", "The requested scope is unknown or exceeds what the client may have."),
]:
    PROBLEMS.append(
        ProblemType(
            f"oauth_{_error}",
            401 if _error == "invalid_client" else 400,
            f"OAuth error: {_error}",
            _text,
            "See RFC 6749 §5.2; fix the request and retry.",
            example={
                "error": _error,
                "error_description": _text,
                "type": f"https://api.amanat.example/problems/oauth_{_error}",
                "title": _error.replace("_", " "),
                "status": 401 if _error == "invalid_client" else 400,
                "detail": _text,
                "instance": "/oauth/token",
                "code": _error,
                "request_id": "req_01JDX3M9Q5W8C2V7T4K6B0N1ZP",
            },
        )
    )

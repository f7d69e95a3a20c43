"""Identity's problem codes (operator sign-in, roles, client registration), registered by
its wiring."""

from __future__ import annotations

from amanat.platform.http.problems import ProblemType

PROBLEMS: list[ProblemType] = [
    ProblemType(
        "login_failed",
        401,
        "Login failed",
        "The email, password or one-time code is wrong.",
        "Check all three; after five failures from one address, that address is locked out "
        "of the account for 15 minutes.",
    ),
    ProblemType(
        "account_locked",
        423,
        "Account locked",
        "Five failed sign-ins from this source IP at this email: this address is locked out "
        "of it for 15 minutes. Sign-in from other addresses is not affected.",
        "Wait the seconds given in Retry-After, or sign in from your usual address.",
    ),
    ProblemType(
        "weak_password",
        422,
        "Password too weak",
        "Operator passwords need at least 12 characters.",
        "Choose a longer one.",
    ),
    ProblemType(
        "invalid_role",
        422,
        "Invalid role",
        "A role is not one amanat knows.",
        "Use one of the documented roles.",
    ),
    ProblemType(
        "invalid_scope",
        422,
        "Invalid scope",
        "A scope is unknown or not allowed for the partner's roles.",
        "Request only scopes listed in the metadata and allowed for your roles.",
    ),
    ProblemType(
        "invalid_redirect_uri",
        422,
        "Invalid redirect URI",
        "Redirect URIs must be absolute https URLs without fragments "
        "(http only for loopback in the sandbox).",
        "Fix the URI.",
    ),
    ProblemType(
        "invalid_client_metadata",
        422,
        "Invalid client metadata",
        "The client registration is inconsistent (for example private_key_jwt without keys).",
        "Fix the named field.",
    ),
    ProblemType(
        "csrf_failed",
        403,
        "CSRF check failed",
        "The request lacks the anti-forgery token of your session.",
        "Reload the console page and try again.",
    ),
]

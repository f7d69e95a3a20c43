"""Webhooks' problem codes, registered by its wiring."""

from __future__ import annotations

from amanat.platform.http.problems import ProblemType

PROBLEMS: list[ProblemType] = [
    ProblemType(
        "invalid_webhook_url",
        422,
        "Webhook URL refused",
        "The endpoint URL breaks a rule: absolute http(s), no credentials, and in "
        "production https to a public address (no loopback, private, link-local or cloud "
        "metadata address, checked again after every DNS lookup).",
        "Use a public https URL; in the sandbox any http(s) URL, localhost included, works.",
    ),
]

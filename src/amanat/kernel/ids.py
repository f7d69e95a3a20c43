"""Prefixed ULIDs: ``pay_01JD...``, sortable by creation time, safe to show.

The prefix names the object type so a support engineer can tell what an id is at a
glance, and so an id pasted into the wrong endpoint is rejected before any lookup.
"""

from __future__ import annotations

import re

from ulid import ULID

PREFIXES: dict[str, str] = {
    "payment": "pay",
    "refund": "re",
    "dispute": "dp",
    "dispute_evidence": "dpe",
    "event": "evt",
    "webhook_endpoint": "we",
    "settlement": "set",
    "client": "cli",
    "partner": "ptr",
    "operator": "op",
    "request": "req",
    "audit": "aud",
    "consent": "cns",
    "key": "key",
    "token_family": "fam",
    "session": "ses",
    "data_key": "dk",
    "data_subject": "cus",
    "legal_hold": "hold",
    "journal": "jnl",
    "top_up": "tu",
    "webhook_delivery": "wd",
    "psu_walk": "pwk",
    "funds_confirmation": "fcn",
    "payee_check": "pck",
    "recon_import": "rim",
    "recon_match": "rmt",
    "recon_break": "brk",
}

_ID_RE = re.compile(r"^(?P<prefix>[a-z]{2,4})_(?P<ulid>[0-9A-HJKMNP-TV-Z]{26})$")


class MintedId(str):
    """An id this process minted itself (a prefix and a random ULID), marked so: it can hold
    no personal data or secret, so masking passes it unchanged (masking one could only
    break its correlation with the same id elsewhere). An id a client sent, however it
    looks, stays a plain ``str`` and is masked."""

    __slots__ = ()


def new_id(kind: str) -> str:
    """A new id for an object kind listed in :data:`PREFIXES`."""
    return f"{PREFIXES[kind]}_{ULID()}"


def is_id_of(kind: str, value: str) -> bool:
    match = _ID_RE.match(value)
    return bool(match) and match is not None and match.group("prefix") == PREFIXES[kind]

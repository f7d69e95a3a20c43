"""Finding a transaction the way support is asked about it.

A partner calls with an id, the rail's end-to-end id, their own reference, or the
customer's phone number, CNIC or IBAN. Each capability answers for what it holds
(:class:`SearchSource`, declared with ``registry.add_search_source``): payments for
payouts, collections and refunds; open banking for consents; disputes for disputes.
Personal identifiers are never compared in clear: the console turns them into data-subject
ids through the blind indexes first, and sources match on those.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class SearchField(StrEnum):
    ID = "id"  # an object id (or the end-to-end id, which is a payment's id)
    REFERENCE = "reference"  # the partner's own reference, or the rail's reference
    PARTNER = "partner"  # a partner id: its most recent objects
    SUBJECT = "subject"  # data subjects found by phone, CNIC or IBAN


@dataclass(frozen=True, slots=True)
class SearchQuery:
    field: SearchField
    value: str
    """The id, reference or partner id searched; empty for ``SUBJECT``."""
    subject_ids: tuple[str, ...] = ()
    """For ``SUBJECT``: the data subjects the blind index found."""
    limit: int = 50


@dataclass(frozen=True, slots=True)
class SearchHit:
    kind: str
    """payout, collection, refund, consent, dispute…"""
    id: str
    partner_id: str | None
    status: str
    created_at: datetime
    amount: int | None = None
    currency: str | None = None
    summary: str = ""
    """A few masked words: the counterparty's bank and IBAN's last four, a reason."""


class SearchSource(Protocol):
    name: str

    async def find(self, query: SearchQuery) -> Sequence[SearchHit]: ...

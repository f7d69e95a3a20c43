"""Finding a transaction from whatever a partner or a customer quotes, for support.

An operator types one value. :func:`classify` decides what it is: a Pakistani mobile
number (``03XXXXXXXXX``, ``+923XXXXXXXXX``, ``923…``, ``00923…``) is a Raast ID, 13 digits
with or without the dashes a CNIC, ``PK…`` that checks out an IBAN; anything else an id,
an end-to-end id, a reference or a partner id. A personal identifier is never compared in
clear: it goes through the blind indexes (:meth:`DataProtectionService.find`, every
partner's customers) to data-subject ids, and the sources match those
(``SearchField.SUBJECT``). Every search source a capability declared
(``registry.add_search_source``) is asked; the hits come back merged, newest first, with
a description of what was searched that carries only the masked value: it is what the
console's access log keeps.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from amanat.kernel.errors import InvalidInput
from amanat.kernel.masking import mask_cnic, mask_iban, mask_phone, redact_text
from amanat.kernel.pakistan import parse_cnic, parse_iban, parse_raast_id
from amanat.kernel.search import SearchField, SearchHit, SearchQuery, SearchSource
from amanat.platform.protection.ports import SubjectRecord

MAX_TEXT = 140
LIMIT = 50

_PHONE = re.compile(r"(?:\+92|0092|92|0)3\d{9}")
_CNIC = re.compile(r"\d{5}-\d{7}-\d|\d{13}")
_IBAN = re.compile(r"PK\d{2}[A-Z0-9]{4,30}")
_SEPARATORS = re.compile(r"[\s\-().]")
_ID = re.compile(r"[a-z]{2,4}_[0-9A-Z]{26}")


class SubjectFinder(Protocol):
    """:meth:`DataProtectionService.find`: data subjects by one identifier, through the
    blind index (``partner_id`` None: every partner's)."""

    async def find(
        self, field: str, value: str, *, partner_id: str | None
    ) -> list[SubjectRecord]: ...


@dataclass(frozen=True, slots=True)
class Classified:
    kind: str
    """``raast_id``, ``cnic`` or ``iban`` (a data subject's field), or ``text``."""
    value: str
    """Normalised (E.164 mobile, 13-digit CNIC, compact IBAN); the text as typed."""
    masked: str
    """What may be shown or logged of it."""

    @property
    def personal(self) -> bool:
        return self.kind != "text"


def classify(text: str) -> Classified:
    """What an operator typed, as the search understands it (see the module docstring)."""
    typed = text.strip()
    compact = _SEPARATORS.sub("", typed)
    try:
        if _PHONE.fullmatch(compact):
            phone = parse_raast_id(compact).value
            return Classified("raast_id", phone, mask_phone(phone))
        if _CNIC.fullmatch(typed) or (compact.isdigit() and len(compact) == 13):
            cnic = parse_cnic(compact)
            return Classified("cnic", cnic.value, mask_cnic(cnic.formatted))
        if _IBAN.fullmatch(compact.upper()):
            iban = parse_iban(compact).value
            return Classified("iban", iban, mask_iban(iban))
    except InvalidInput:
        pass  # shaped like one, but not valid: searched as text (a reference, perhaps)
    return Classified("text", typed, redact_text(typed)[:64])


_LABELS = {"raast_id": "phone number (Raast ID)", "cnic": "CNIC", "iban": "IBAN"}


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    described: str
    """What was searched, the value masked: for the access log and the page."""
    classified: Classified
    subjects: int
    """Data subjects the blind index found (personal identifiers only)."""
    hits: list[SearchHit]


class SearchService:
    def __init__(self, sources: Sequence[SearchSource], subjects: SubjectFinder) -> None:
        self._sources = tuple(sources)
        self._subjects = subjects

    @property
    def source_names(self) -> tuple[str, ...]:
        return tuple(source.name for source in self._sources)

    async def search(self, text: str, *, limit: int = LIMIT) -> SearchOutcome:
        """Everything every source finds for ``text``, newest first, at most ``limit``."""
        text = text.strip()[:MAX_TEXT]
        classified = classify(text)
        if classified.personal:
            return await self._personal(classified, limit)
        # Free text may be anything a caller said (a name, an email): only an id is shown
        # as typed; anything else is described by its length.
        described = (
            f"id '{text}'"
            if _ID.fullmatch(text)
            else f"a reference or other text of {len(text)} characters"
        )
        if not text or "\x00" in text:
            return SearchOutcome(described, classified, 0, [])
        queries = [
            SearchQuery(field, classified.value, limit=limit)
            for field in (SearchField.ID, SearchField.REFERENCE, SearchField.PARTNER)
        ]
        return SearchOutcome(described, classified, 0, await self._ask(queries, limit))

    async def _personal(self, classified: Classified, limit: int) -> SearchOutcome:
        found = await self._subjects.find(classified.kind, classified.value, partner_id=None)
        ids = tuple(sorted({record.id for record in found}))
        described = (
            f"{_LABELS[classified.kind]} {classified.masked} "
            f"({len(ids)} customer record{'s' if len(ids) != 1 else ''})"
        )
        if not ids:
            return SearchOutcome(described, classified, 0, [])
        query = SearchQuery(SearchField.SUBJECT, "", subject_ids=ids, limit=limit)
        return SearchOutcome(described, classified, len(ids), await self._ask([query], limit))

    async def _ask(self, queries: list[SearchQuery], limit: int) -> list[SearchHit]:
        hits: dict[tuple[str, str], SearchHit] = {}
        for query in queries:
            for source in self._sources:
                for hit in await source.find(query):
                    hits.setdefault((hit.kind, hit.id), hit)
        ordered = sorted(hits.values(), key=lambda h: (h.created_at, h.id), reverse=True)
        return ordered[:limit]

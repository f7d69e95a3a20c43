"""One entry point for every statement format a source can send.

A source names its format ("camt", or a CSV profile's name, see ``sources.py``); this is
where that name becomes a parser, so the service reading an upload never needs to know
which formats exist.
"""

from __future__ import annotations

from amanat.kernel.errors import InvalidInput
from amanat.reconciliation.domain.camt import camt_records, parse_camt
from amanat.reconciliation.domain.csv_import import PROFILES, parse_csv
from amanat.reconciliation.domain.records import ExternalRecord

CAMT = "camt"
FORMATS: tuple[str, ...] = (CAMT, *PROFILES)


def read_records(data: bytes, fmt: str) -> list[ExternalRecord]:
    """The external records of a file in format ``fmt``; a malformed file raises
    :class:`~amanat.reconciliation.domain.errors.StatementRejected` (an ``InvalidInput``)."""
    if fmt == CAMT:
        return camt_records(parse_camt(data))
    profile = PROFILES.get(fmt)
    if profile is None:
        raise InvalidInput(
            f"{fmt!r} is not a statement format; the formats are {', '.join(FORMATS)}.",
            code="unknown_format",
        )
    return parse_csv(data, profile)

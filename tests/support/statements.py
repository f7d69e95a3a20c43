"""Bank statements for reconciliation tests: a camt.053 of the platform's settlement
account, built from the payments a test made, the way a bank would report them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"


@dataclass(frozen=True)
class Entry:
    """One booked entry: a single payment (one end-to-end id) or a batch (several)."""

    reference: str  # the bank's AcctSvcrRef
    direction: str  # CRDT | DBIT
    amount: int  # paisa, as booked (a batch: net of charges)
    booked: str  # YYYY-MM-DD
    value: str
    end_to_end_ids: Sequence[tuple[str, int]]  # (id, gross paisa) per transaction
    charges: int = 0
    batch_id: str | None = None


def _amount(paisa: int) -> str:
    return f"{paisa // 100}.{paisa % 100:02d}"


def _entry(entry: Entry) -> str:
    details = "".join(
        f"""<TxDtls><Refs><EndToEndId>{escape(e2e)}</EndToEndId></Refs>
<Amt Ccy="PKR">{_amount(gross)}</Amt><CdtDbtInd>{entry.direction}</CdtDbtInd></TxDtls>"""
        for e2e, gross in entry.end_to_end_ids
    )
    batch = ""
    if len(entry.end_to_end_ids) > 1:
        batch = (
            f"<Btch><PmtInfId>{escape(entry.batch_id or entry.reference)}</PmtInfId>"
            f"<NbOfTxs>{len(entry.end_to_end_ids)}</NbOfTxs></Btch>"
        )
    charges = ""
    if entry.charges:
        charges = (
            f'<Chrgs><TtlChrgsAndTaxAmt Ccy="PKR">{_amount(entry.charges)}</TtlChrgsAndTaxAmt>'
            f'<Rcrd><Amt Ccy="PKR">{_amount(entry.charges)}</Amt></Rcrd></Chrgs>'
        )
    return f"""<Ntry>
<Amt Ccy="PKR">{_amount(entry.amount)}</Amt><CdtDbtInd>{entry.direction}</CdtDbtInd>
<Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>{entry.booked}</Dt></BookgDt>
<ValDt><Dt>{entry.value}</Dt></ValDt><AcctSvcrRef>{escape(entry.reference)}</AcctSvcrRef>
<BkTxCd><Prtry><Cd>RAAST</Cd></Prtry></BkTxCd>{charges}
<NtryDtls>{batch}{details}</NtryDtls>
</Ntry>"""


def camt053(statement_id: str, day: str, entries: Sequence[Entry]) -> bytes:
    """A camt.053.001.08 statement of the platform's settlement account for ``day``."""
    body = "".join(_entry(e) for e in entries)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="{NAMESPACE}"><BkToCstmrStmt>
<GrpHdr><MsgId>{statement_id}</MsgId><CreDtTm>{day}T23:00:00+05:00</CreDtTm></GrpHdr>
<Stmt><Id>{statement_id}</Id><CreDtTm>{day}T23:00:00+05:00</CreDtTm>
<Acct><Id><IBAN>PK46HABB0000009990000001</IBAN></Id><Ccy>PKR</Ccy></Acct>
{body}
</Stmt></BkToCstmrStmt></Document>""".encode()

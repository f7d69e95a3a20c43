"""The camt reader against genkgo/camt's own parse of its samples, its refusals, and how
camt entries flatten to external records.

Each ``tests/fixtures/camt/*.json`` is a dump of the PHP library genkgo/camt's DTOs for
the XML beside it (MIT, see LICENSE-genkgo-camt): amounts in minor units, negative for
debits; dates as ISO strings in UTC; an object seen before dumped as "__RECURSIVITY__".
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.support.paths import REPO

from amanat.kernel.errors import InvalidInput
from amanat.kernel.money import CURRENCY_EXPONENTS
from amanat.reconciliation.domain.camt import (
    CamtMessage,
    Entry,
    Statement,
    TransactionDetail,
    camt_records,
    parse_camt,
)
from amanat.reconciliation.domain.errors import StatementRejected
from amanat.reconciliation.domain.formats import FORMATS, read_records
from amanat.reconciliation.domain.records import BatchMember, Direction

SAMPLES = REPO / "tests" / "fixtures" / "camt"
SEEN = "__RECURSIVITY__"
GENKGO_BALANCE_TYPES = {
    "OPBD": "opening",
    "CLBD": "closing",
    "OPAV": "opening_available",
    "CLAV": "closing_available",
    "ITBD": "interim",
}
GENKGO_PARTY_ROLES = {
    "Debtor": "debtor",
    "Creditor": "creditor",
    "UltimateDebtor": "ultimate_debtor",
    "UltimateCreditor": "ultimate_creditor",
}


def _samples_with_expectations() -> list[Path]:
    return sorted(path for path in SAMPLES.glob("*.xml") if path.with_suffix(".json").exists())


# -- Reading genkgo's dump -------------------------------------------------------------------


def _listed(owner: dict[str, Any], many: str, one: str) -> list[dict[str, Any]]:
    """A list getter's items; its "seen before" item is the single getter's object."""
    return [owner[one] if item == SEEN else item for item in owner[many]]


def _money(dumped: dict[str, Any] | None) -> tuple[int, str] | None:
    if dumped is None:
        return None
    return int(dumped["getAmount"]), dumped["getCurrency"]["getCode"]


def _moment(dumped: dict[str, Any] | None) -> datetime | None:
    return datetime.fromisoformat(dumped["0"]) if dumped else None


def _signed_minor(amount: Decimal, currency: str, credit_debit: str) -> int:
    minor = int(amount.scaleb(CURRENCY_EXPONENTS[currency]))
    return -minor if credit_debit == "DBIT" else minor


def _same_day_or_moment(
    expected: dict[str, Any] | None, on: date | None, at: datetime | None
) -> None:
    """genkgo keeps a ``Dt`` as midnight UTC and a ``DtTm`` as its instant in UTC."""
    moment = _moment(expected)
    if moment is None:
        assert on is None and at is None
    elif at is not None:
        assert at == moment
    else:
        assert on == moment.date()


def _account_id(dumped: dict[str, Any] | None) -> str | None:
    if dumped is None:
        return None
    if "getIban" in dumped:
        return str(dumped["getIban"]["getIban"])
    return str(dumped["getIdentification"])


# -- Comparing -------------------------------------------------------------------------------


def _assert_statement(expected: dict[str, Any], statement: Statement) -> None:
    assert statement.id == expected["getId"]
    assert statement.account.identification == _account_id(expected["getAccount"])
    assert statement.created_on == _moment(expected["getCreatedOn"])
    assert statement.from_time == _moment(expected["getFromDate"])
    assert statement.to_time == _moment(expected["getToDate"])
    assert statement.electronic_sequence == expected["getElectronicSequenceNumber"]
    assert statement.legal_sequence == expected["getLegalSequenceNumber"]
    assert statement.copy_duplicate == expected["getCopyDuplicateIndicator"]
    assert statement.additional_info == expected["getAdditionalInformation"]
    pagination = expected["getPagination"]
    assert statement.page_number == (pagination["getPageNumber"] if pagination else None)
    # camt.054 notifications have no balances, and genkgo's notification has no getter.
    balances = expected.get("getBalances", [])
    assert len(statement.balances) == len(balances)
    for balance, wanted in zip(statement.balances, balances, strict=True):
        assert GENKGO_BALANCE_TYPES[balance.type] == wanted["getType"]
        minor = _signed_minor(balance.amount, balance.currency, balance.credit_debit)
        assert (minor, balance.currency) == _money(wanted["getAmount"])
        _same_day_or_moment(wanted["getDate"], balance.balance_date, balance.balance_time)


def _assert_entry(expected: dict[str, Any], entry: Entry) -> None:
    minor = _signed_minor(entry.amount, entry.currency, entry.credit_debit)
    assert (minor, entry.currency) == _money(expected["getAmount"])
    assert entry.credit_debit == expected["getCreditDebitIndicator"]
    assert entry.status == expected["getStatus"]
    assert entry.reversal == expected["getReversalIndicator"]
    assert entry.account_servicer_ref == expected["getAccountServicerReference"]
    assert entry.reference == expected["getReference"]
    assert (entry.additional_info or "") == expected["getAdditionalInfo"]
    batch_id = entry.batch.payment_information_id if entry.batch else None
    assert batch_id == expected["getBatchPaymentId"]
    assert entry.charges == expected["getCharges"]  # None in every sample
    _same_day_or_moment(expected["getBookingDate"], entry.booking_date, entry.booking_time)
    _same_day_or_moment(expected["getValueDate"], entry.value_date, entry.value_time)
    details = _listed(expected, "getTransactionDetails", "getTransactionDetail")
    assert len(entry.transactions) == len(details)
    for detail, wanted in zip(entry.transactions, details, strict=True):
        _assert_detail(wanted, detail)


def _assert_detail(expected: dict[str, Any], detail: TransactionDetail) -> None:
    assert detail.credit_debit == expected["getCreditDebitIndicator"]
    if expected["getAmount"] is not None:
        assert detail.amount is not None and detail.currency is not None
        minor = _signed_minor(detail.amount, detail.currency, detail.credit_debit)
        assert (minor, detail.currency) == _money(expected["getAmount"])
    else:
        assert detail.amount is None
    refs = expected["getReference"]
    assert detail.end_to_end_id == refs["getEndToEndId"]
    assert detail.uetr == refs["getUuidEndToEndReference"]
    assert detail.instruction_id == refs["getInstructionId"]
    assert detail.transaction_id == refs["getTransactionId"]
    assert detail.account_servicer_ref == refs["getAccountServicerReference"]
    assert detail.mandate_id == refs["getMandateId"]
    assert list(detail.proprietary_refs) == [
        (p["getType"], p["getReference"]) for p in refs["getProprietaries"]
    ]
    _assert_remittance(expected["getRemittanceInformation"], detail)
    parties = {
        (GENKGO_PARTY_ROLES[p["getRelatedPartyType"]["__CLASS__"].rsplit("\\", 1)[1]],
         p["getRelatedPartyType"]["getName"], _account_id(p["getAccount"]))
        for p in expected["getRelatedParties"]
    }  # fmt: skip
    assert {(p.role, p.name, p.account) for p in detail.related_parties} == parties


def _assert_remittance(expected: dict[str, Any] | None, detail: TransactionDetail) -> None:
    if expected is None:
        assert detail.unstructured == () and detail.structured == ()
        return
    lines = _listed(expected, "getUnstructuredBlocks", "getUnstructuredBlock")
    assert list(detail.unstructured) == [line["getMessage"] for line in lines]
    blocks = _listed(expected, "getStructuredBlocks", "getStructuredBlock")
    assert len(detail.structured) == len(blocks)
    for block, wanted in zip(detail.structured, blocks, strict=True):
        reference = wanted["getCreditorReferenceInformation"]
        if reference == SEEN:
            reference = expected["getCreditorReferenceInformation"]
        assert block.creditor_reference == (reference["getRef"] if reference else None)
        kind = reference and (reference["getCode"] or reference["getProprietary"])
        assert block.creditor_reference_type == kind
        additional = wanted["getAdditionalRemittanceInformation"]
        assert list(block.additional_info) == ([additional] if additional else [])


@pytest.mark.parametrize("sample", _samples_with_expectations(), ids=lambda path: path.name)
def test_each_sample_reads_as_genkgo_reads_it(sample: Path) -> None:
    expected = json.loads(sample.with_suffix(".json").read_text())
    message = parse_camt(sample.read_bytes())

    header = expected["getGroupHeader"]
    assert message.message_id == header["getMessageId"]
    assert message.created_on == _moment(header["getCreatedOn"])
    assert message.additional_info == header["getAdditionalInformation"]
    assert len(message.statements) == len(expected["getRecords"])
    # The dump lists each entry once, with its record; in the two-statement sample only
    # the last statement's entries made it into the list, so entries are found by their
    # record and position rather than counted.
    by_id = {statement.id: statement for statement in message.statements}
    for wanted in expected["getEntries"]:
        record = wanted["getRecord"]
        statement = by_id[record["getId"]]
        _assert_statement(record, statement)
        assert len(statement.entries) == len(record["getEntries"])
        _assert_entry(wanted, statement.entries[wanted["getIndex"]])


def test_kind_and_version_come_from_the_message_and_its_namespace() -> None:
    kinds = {
        path.name: (message.kind, message.version)
        for path in _samples_with_expectations()
        for message in [parse_camt(path.read_bytes())]
    }
    assert kinds["camt052.v8.xml"] == ("camt.052", 8)
    assert kinds["camt053.v2.minimal.xml"] == ("camt.053", 2)
    assert kinds["camt053.v4.xml"] == ("camt.053", 4)
    assert kinds["camt054.v8-with-UETR.xml"] == ("camt.054", 8)


def test_a_document_without_a_namespace_reads_with_no_version() -> None:
    ns = b' xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"'
    message = parse_camt(_camt053(_entry()).replace(ns, b""))
    assert (message.kind, message.version, message.namespace) == ("camt.053", None, None)


def test_a_namespace_of_another_kind_is_refused() -> None:
    data = _camt053(_entry()).replace(b"camt.053.001.08", b"camt.054.001.08")
    [error] = _refusal(data).errors
    assert error.location == "line 3, BkToCstmrStmt"
    assert "camt.054" in error.message


def test_the_wrong_sample_is_refused_where_its_statement_is_missing() -> None:
    with pytest.raises(StatementRejected) as refused:
        parse_camt((SAMPLES / "camt053.v2.wrong.xml").read_bytes())
    assert isinstance(refused.value, InvalidInput)
    assert refused.value.code == "statement_rejected"
    [error] = refused.value.errors
    assert error.location == "line 3, BkToCstmrStmt"
    assert "no Stmt" in error.message


# -- Building camt documents for the rules ---------------------------------------------------


def _detail(
    e2e: str | None = None,
    *,
    amount: str | None = None,
    ustrd: str | None = None,
    scor: str | None = None,
    uetr: str | None = None,
) -> str:
    refs = "".join(
        f"<{name}>{value}</{name}>"
        for name, value in (("EndToEndId", e2e), ("UETR", uetr))
        if value is not None
    )
    money = f'<Amt Ccy="PKR">{amount}</Amt>' if amount else ""
    remittance = f"<Ustrd>{ustrd}</Ustrd>" if ustrd else ""
    if scor:
        remittance += f"<Strd><CdtrRefInf><Ref>{scor}</Ref></CdtrRefInf></Strd>"
    return (
        f"<TxDtls><Refs>{refs}</Refs>{money}"
        f"{f'<RmtInf>{remittance}</RmtInf>' if remittance else ''}</TxDtls>"
    )


def _entry(
    amount: str = "1500.00",
    *,
    cd: str = "CRDT",
    status: str = "BOOK",
    booked: str = "2026-11-24",
    acct_ref: str | None = None,
    ntry_ref: str | None = None,
    details: str = "",
    batch: str = "",
    charges: str | None = None,
) -> str:
    parts = [f"<NtryRef>{ntry_ref}</NtryRef>" if ntry_ref else ""]
    parts += [
        f'<Amt Ccy="PKR">{amount}</Amt><CdtDbtInd>{cd}</CdtDbtInd>',
        f"<Sts><Cd>{status}</Cd></Sts>",
        f"<BookgDt><Dt>{booked}</Dt></BookgDt><ValDt><Dt>{booked}</Dt></ValDt>",
        f"<AcctSvcrRef>{acct_ref}</AcctSvcrRef>" if acct_ref else "",
        f'<Chrgs><TtlChrgsAndTaxAmt Ccy="PKR">{charges}</TtlChrgsAndTaxAmt></Chrgs>'
        if charges
        else "",
        f"<NtryDtls>{batch}{details}</NtryDtls>" if details or batch else "",
    ]
    return f"<Ntry>{''.join(parts)}</Ntry>"


def _camt053(*entries: str, statement_id: str = "STMT-1") -> bytes:
    ns = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
    body = "\n".join(entries)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="{ns}">
<BkToCstmrStmt>
<GrpHdr><MsgId>MSG-1</MsgId><CreDtTm>2026-11-24T18:00:00+05:00</CreDtTm></GrpHdr>
<Stmt>
<Id>{statement_id}</Id>
<Acct><Id><IBAN>PK36SCBL0000001123456702</IBAN></Id><Ccy>PKR</Ccy></Acct>
{body}
</Stmt>
</BkToCstmrStmt>
</Document>
""".encode()


def _records(*entries: str, statement_id: str = "STMT-1") -> list[Any]:
    return camt_records(parse_camt(_camt053(*entries, statement_id=statement_id)))


PAY = "pay_01JD5Z8K3N4Q6R7S8T9V0W1X2Y"
PAY_2 = "pay_01JD5Z8K3N4Q6R7S8T9V0W1X2Z"


# -- Refusals --------------------------------------------------------------------------------


def _refusal(data: bytes, **kwargs: Any) -> StatementRejected:
    with pytest.raises(StatementRejected) as refused:
        parse_camt(data, **kwargs)
    return refused.value


def test_a_doctype_is_refused_so_no_entity_is_ever_expanded() -> None:
    laughs = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<Document><BkToCstmrStmt><GrpHdr><MsgId>&lol3;</MsgId></GrpHdr></BkToCstmrStmt></Document>
"""
    [error] = _refusal(laughs).errors
    assert error.location == "line 2"
    assert "DOCTYPE" in error.message


def test_an_external_entity_is_refused_before_anything_is_read() -> None:
    passwd = b"""<?xml version="1.0"?>
<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Document><BkToCstmrStmt><GrpHdr><MsgId>&xxe;</MsgId></GrpHdr></BkToCstmrStmt></Document>
"""
    refused = _refusal(passwd)
    assert "DOCTYPE" in refused.errors[0].message
    assert "root:" not in str(refused)


def test_an_oversize_file_is_refused_unread() -> None:
    data = _camt053(_entry())
    [error] = _refusal(data, max_bytes=len(data) - 1).errors
    assert error.location == "file"
    assert parse_camt(data, max_bytes=len(data)).message_id == "MSG-1"


def test_malformed_xml_is_refused_with_its_line() -> None:
    data = _camt053(_entry()).replace(b"</Stmt>", b"</Statement>")
    [error] = _refusal(data).errors
    assert error.location.startswith("line 9, column")
    assert "not well-formed" in error.message


def test_an_unknown_message_or_root_is_refused() -> None:
    pain = b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"><CstmrCdtTrfInitn/>'
    assert "not a camt" in _refusal(pain + b"</Document>").errors[0].message
    [error] = _refusal(b"<Statement/>").errors
    assert error.location == "line 1, Statement"


def test_every_bad_amount_is_reported_with_its_element() -> None:
    data = _camt053(_entry("15.001"), _entry("12.50"), _entry("1,500"), _entry("1" + "0" * 17))
    errors = _refusal(data).errors
    assert [e.location for e in errors] == [
        "line 8, Stmt[1]/Ntry[1]/Amt",
        "line 10, Stmt[1]/Ntry[3]/Amt",
        "line 11, Stmt[1]/Ntry[4]/Amt",
    ]
    assert "15.001 PKR has 3 decimals; PKR has 2" in errors[0].message
    assert "'1,500' is not an amount" in errors[1].message
    assert "is too large" in errors[2].message


def test_missing_and_malformed_fields_are_all_reported() -> None:
    no_amount = _entry().replace('<Amt Ccy="PKR">1500.00</Amt>', "")
    no_indicator = _entry().replace("<CdtDbtInd>CRDT</CdtDbtInd>", "")
    bad_date = _entry(booked="2026-02-30")
    bad_currency = _entry().replace('Ccy="PKR"', 'Ccy="XYZ"')
    errors = _refusal(_camt053(no_amount, no_indicator, bad_date, bad_currency)).errors
    assert [(e.location, e.message) for e in errors] == [
        ("line 8, Stmt[1]/Ntry[1]", "missing Amt"),
        ("line 9, Stmt[1]/Ntry[2]", "missing CdtDbtInd"),
        ("line 10, Stmt[1]/Ntry[3]/BookgDt/Dt", "'2026-02-30' is not a date (YYYY-MM-DD)"),
        ("line 10, Stmt[1]/Ntry[3]/ValDt/Dt", "'2026-02-30' is not a date (YYYY-MM-DD)"),
        ("line 11, Stmt[1]/Ntry[4]/Amt", "currency 'XYZ' is not supported"),
    ]


def test_errors_name_elements_never_the_account() -> None:
    data = _camt053(_entry()).replace(b"<Ccy>PKR</Ccy>", b"").replace(b"<IBAN>", b"<IBAN2>")
    data = data.replace(b"</IBAN>", b"</IBAN2>")
    refused = _refusal(data)
    assert refused.errors[0].location == "line 7, Stmt[1]/Acct/Id"
    assert "PK36" not in str(refused) and "PK36" not in repr(refused.errors)


def test_a_file_with_too_many_faults_stops_at_the_cap() -> None:
    refused = _refusal(_camt053(*(_entry("1.001") for _ in range(150))))
    assert len(refused.errors) == 100
    assert refused.truncated


# -- Flattening ------------------------------------------------------------------------------


def test_a_single_payment_entry_is_one_record_named_by_the_bank() -> None:
    [record] = _records(
        _entry(
            "1500.00",
            acct_ref="BANKREF-1",
            details=_detail(PAY, scor="RF18539007547034", ustrd="INV 7", uetr="u-1"),
            charges="0.50",
        )
    )
    assert record.external_id == "BANKREF-1"
    assert record.direction is Direction.CREDIT
    assert (record.amount, record.currency, record.fees) == (150000, "PKR", 50)
    assert record.end_to_end_id == PAY
    assert record.reference == "RF18539007547034"  # the structured reference first
    assert record.uetr == "u-1"
    assert record.value_date == record.booking_date == date(2026, 11, 24)
    assert record.members == () and record.batch_reference is None
    assert record.location == "Stmt[1]/Ntry[1]"


def test_references_fall_back_to_unstructured_then_the_entry_reference() -> None:
    unstructured, bare = _records(
        _entry(details=_detail(PAY, ustrd="INV 7")),
        _entry("10.00", ntry_ref="NTRY-9", cd="DBIT"),
    )
    assert unstructured.reference == "INV 7"
    assert (bare.reference, bare.external_id, bare.direction) == ("NTRY-9", "NTRY-9", "debit")
    assert bare.end_to_end_id is None


def test_a_batch_entry_is_one_record_with_its_members() -> None:
    batch = "<Btch><MsgId>M-1</MsgId><PmtInfId>PMT-1</PmtInfId><NbOfTxs>2</NbOfTxs></Btch>"
    [record] = _records(
        _entry(
            "2999.00",
            acct_ref="BANKREF-2",
            batch=batch,
            details=_detail(PAY, amount="1000.00", ustrd="one")
            + _detail(PAY_2, amount="2000.00", scor="RF01"),
            charges="1.00",
        )
    )
    assert record.batch_reference == "PMT-1"
    assert (record.amount, record.fees) == (299900, 100)  # booked, net of the fee
    assert record.end_to_end_id is None
    assert record.members == (
        BatchMember(PAY, "one", 100000),
        BatchMember(PAY_2, "RF01", 200000),
    )


def test_a_batch_is_named_by_its_message_then_the_bank_reference() -> None:
    by_message = "<Btch><MsgId>M-1</MsgId><NbOfTxs>3</NbOfTxs></Btch>"
    first, second = _records(
        _entry(batch=by_message),
        _entry(acct_ref="BANKREF-3", details=_detail(PAY) + _detail(PAY_2)),
    )
    assert (first.batch_reference, first.members) == ("M-1", ())
    assert second.batch_reference == "BANKREF-3"
    assert [m.amount for m in second.members] == [None, None]


def test_the_samples_batch_notification_flattens_to_one_record() -> None:
    [record] = camt_records(parse_camt((SAMPLES / "camt054.v2.xml").read_bytes()))
    assert (record.external_id, record.amount, record.currency) == (
        "AAAASESS-FP-ACCR001",
        20000000,
        "SEK",
    )
    assert [m.reference for m in record.members] == [
        "ISR ref number V1",
        "ISR ref number V2",
        "Ref number V3 block 1",
    ]


def test_notprovided_is_no_end_to_end_id() -> None:
    single, batch = _records(
        _entry(details=_detail("NOTPROVIDED")),
        _entry(details=_detail("NOTPROVIDED") + _detail(PAY)),
    )
    assert single.end_to_end_id is None
    assert [m.end_to_end_id for m in batch.members] == [None, PAY]


def test_only_booked_entries_become_records() -> None:
    records = _records(
        _entry(status="PDNG", acct_ref="P"),
        _entry(status="INFO", acct_ref="I"),
        _entry(status="BOOK", acct_ref="B"),
        _entry("0.00", acct_ref="ZERO"),
    )
    assert [(r.external_id, r.location) for r in records] == [("B", "Stmt[1]/Ntry[3]")]


def test_digests_are_stable_across_overlapping_statements() -> None:
    monday = _entry("10.00", booked="2026-11-23", details=_detail(PAY))
    tuesday = _entry("20.00", booked="2026-11-24", details=_detail(PAY_2))
    wednesday = _entry("30.00", booked="2026-11-25", details=_detail(ustrd="cash"))
    first = _records(monday, tuesday, statement_id="A")
    second = _records(tuesday, wednesday, statement_id="B")
    assert first[1].external_id == second[0].external_id
    assert (first[1].location, second[0].location) == ("Stmt[1]/Ntry[2]", "Stmt[1]/Ntry[1]")
    assert first[1].external_id.startswith("d:") and len(first[1].external_id) == 66
    assert len({r.external_id for r in [*first, *second]}) == 3


def test_identical_entries_in_one_file_are_told_apart_by_occurrence() -> None:
    twice = _records(_entry(details=_detail(PAY)), _entry(details=_detail(PAY)))
    again = _records(_entry(details=_detail(PAY)), _entry(details=_detail(PAY)))
    assert twice[1].external_id == twice[0].external_id + "#2"
    assert [r.external_id for r in twice] == [r.external_id for r in again]


def test_read_records_reads_camt_and_refuses_an_unknown_format() -> None:
    assert read_records(_camt053(_entry(acct_ref="R")), "camt")[0].external_id == "R"
    assert "camt" in FORMATS and "sandbox_rail" in FORMATS and "bank_csv" in FORMATS
    with pytest.raises(InvalidInput) as refused:
        read_records(b"", "mt940")
    assert refused.value.code == "unknown_format"


def test_the_message_lists_its_entries_across_statements() -> None:
    message: CamtMessage = parse_camt((SAMPLES / "camt053.v2.multi.statement.xml").read_bytes())
    assert [e.amount for e in message.entries] == [Decimal("8.85"), Decimal("7.00")]

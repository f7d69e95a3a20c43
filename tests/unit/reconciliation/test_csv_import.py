"""CSV reports by profile: the rail's settlement report, a bank's export, every refusal
with its line, stable ids, and a round trip of generated rail reports."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amanat.kernel.money import CURRENCY_EXPONENTS
from amanat.reconciliation.domain import csv_import
from amanat.reconciliation.domain.csv_import import PROFILES, CsvProfile, parse_csv
from amanat.reconciliation.domain.errors import StatementRejected
from amanat.reconciliation.domain.formats import read_records
from amanat.reconciliation.domain.records import Direction, ExternalRecord

RAIL = PROFILES["sandbox_rail"]
BANK = PROFILES["bank_csv"]
RAIL_HEADER = (
    "transfer_id,end_to_end_id,direction,amount,currency,settled_at,settlement_date,batch_id,fee"
)
BANK_HEADER = "Transaction Date,Value Date,Description,Reference,Debit,Credit,Balance"
PAY = "pay_01JD5Z8K3N4Q6R7S8T9V0W1X2Y"
PAY_2 = "pay_01JD5Z8K3N4Q6R7S8T9V0W1X2Z"


def _rail(*rows: str) -> bytes:
    return "\n".join([RAIL_HEADER, *rows, ""]).encode()


def _bank(*rows: str) -> bytes:
    return "\r\n".join([BANK_HEADER, *rows, ""]).encode()


def _row(
    transfer_id: str = "trf_1",
    e2e: str = PAY,
    direction: str = "credit",
    amount: str = "1500.00",
    currency: str = "PKR",
    on: str = "2026-11-24",
    batch: str = "",
    fee: str = "",
) -> str:
    return f"{transfer_id},{e2e},{direction},{amount},{currency},{on}T09:30:00Z,{on},{batch},{fee}"


def _refused(data: bytes, profile: CsvProfile = RAIL, **kwargs: Any) -> list[tuple[str, str]]:
    with pytest.raises(StatementRejected) as refused:
        parse_csv(data, profile, **kwargs)
    assert refused.value.code == "statement_rejected"
    return [(error.location, error.message) for error in refused.value.errors]


# -- The rail's report -----------------------------------------------------------------------


def test_the_rails_report_reads_row_by_row() -> None:
    records = parse_csv(
        _rail(
            _row("trf_1", PAY, "credit", "1500.00"),
            _row("trf_2", "", "debit", "250.50", batch="b_7", fee="0.50"),
            _row("trf_3", PAY_2, "credit", "1", currency="JPY", on="2026-11-25", fee="0"),
        ),
        RAIL,
    )
    assert records == [
        ExternalRecord(
            external_id="trf_1",
            direction=Direction.CREDIT,
            amount=150000,
            currency="PKR",
            value_date=date(2026, 11, 24),
            end_to_end_id=PAY,
            location="line 2",
        ),
        ExternalRecord(
            external_id="trf_2",
            direction=Direction.DEBIT,
            amount=25100,  # what was booked: money out, the transfer and the rail's fee
            currency="PKR",
            value_date=date(2026, 11, 24),
            batch_reference="b_7",
            fees=50,
            location="line 3",
        ),
        ExternalRecord(
            external_id="trf_3",
            direction=Direction.CREDIT,
            amount=1,
            currency="JPY",
            value_date=date(2026, 11, 25),
            end_to_end_id=PAY_2,
            location="line 4",
        ),
    ]


def test_quoted_crlf_and_bom_files_read_as_the_plain_one() -> None:
    plain = _rail(_row("trf_1"), _row("trf_2", amount="7.25", batch="b_1"))
    quoted = io.StringIO()
    writer = csv.writer(quoted, quoting=csv.QUOTE_ALL)  # \r\n line ends
    for line in plain.decode().splitlines():
        writer.writerow(line.split(","))
    expected = parse_csv(plain, RAIL)
    assert parse_csv(quoted.getvalue().encode(), RAIL) == expected
    assert parse_csv(b"\xef\xbb\xbf" + plain, RAIL) == expected
    assert parse_csv(plain.replace(b"\n", b"\r\n"), RAIL) == expected


def test_blank_lines_are_skipped_and_lines_still_counted() -> None:
    data = _rail(_row("trf_1"), "", _row("trf_2"))
    assert [r.location for r in parse_csv(data, RAIL)] == ["line 2", "line 4"]


def test_columns_are_found_by_name_in_any_order_with_extra_columns() -> None:
    data = (
        "note,fee,batch_id,settlement_date,settled_at,currency,amount,direction,"
        "end_to_end_id,transfer_id\n"
        f"hello,,,2026-11-24,2026-11-24T09:30:00Z,PKR,12.00,debit,{PAY},trf_9\n"
    ).encode()
    [record] = parse_csv(data, RAIL)
    assert (record.external_id, record.amount, record.direction) == ("trf_9", 1200, "debit")


def test_records_are_the_same_however_they_are_made(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _rail(_row("trf_1"), _row("trf_2", e2e="", batch="b_1", fee="1.00"))
    by_slots = parse_csv(data, RAIL)
    monkeypatch.setattr(csv_import, "_SLOTS_SETTABLE", False)
    assert parse_csv(data, RAIL) == by_slots
    assert [hash(r) for r in parse_csv(data, RAIL)] == [hash(r) for r in by_slots]


def test_reading_the_same_file_twice_gives_the_same_ids() -> None:
    data = _rail(_row("trf_1"), _row("trf_2"))
    assert [r.external_id for r in parse_csv(data, RAIL)] == ["trf_1", "trf_2"]
    assert parse_csv(data, RAIL) == parse_csv(data, RAIL)


# -- A bank's export -------------------------------------------------------------------------


def test_a_bank_export_reads_debits_credits_and_thousands() -> None:
    records = parse_csv(
        _bank(
            f'24/11/2026,25/11/2026,RAAST CR {PAY} ALI,,,"1,500.00","10,500.00"',
            f'24/11/2026,24/11/2026,IBFT OUT,{PAY_2},"12,345,678.90",,"9,000.00"',
            '25/11/2026,25/11/2026,CHARGES,REF-9,0.00,"2,000",11000.00',
        ),
        BANK,
    )
    first, second, third = records
    assert (first.direction, first.amount, first.currency) == (Direction.CREDIT, 150000, "PKR")
    assert (first.booking_date, first.value_date) == (date(2026, 11, 24), date(2026, 11, 25))
    assert (first.end_to_end_id, first.reference) == (PAY, None)
    assert (second.direction, second.amount) == (Direction.DEBIT, 1234567890)
    assert (second.end_to_end_id, second.reference) == (PAY_2, PAY_2)
    # A 0.00 in the column that does not apply counts as empty.
    assert (third.direction, third.amount, third.end_to_end_id) == ("credit", 200000, None)
    assert all(r.external_id.startswith("d:") for r in records)
    assert len({r.external_id for r in records}) == 3


def test_a_quoted_line_break_keeps_the_line_numbers_right() -> None:
    data = _bank(
        '24/11/2026,24/11/2026,"RAAST CR\nFROM ALI",,,5.00,5',
        "24/11/2026,24/11/2026,B,,,x,5",
    )
    assert _refused(data, BANK) == [("line 4", "Credit: 'x' is not an amount")]


def test_the_id_pattern_finds_only_whole_amanat_ids() -> None:
    rows = [
        f"24/11/2026,24/11/2026,REF{PAY},,,1.00,1",  # glued to a word: not an id
        f"24/11/2026,24/11/2026,{PAY}X,,,1.00,2",
        "24/11/2026,24/11/2026,pay_01jd5z8k3n4q6r7s8t9v0w1x2y,,,1.00,3",  # lower case
        "24/11/2026,24/11/2026,pay_01JD5Z8K3N4Q6R7S8T9V0W1X2U,,,1.00,4",  # U: not Crockford
        f"24/11/2026,24/11/2026,PAYMENT/{PAY}/OK,,,1.00,5",
    ]
    found = [r.end_to_end_id for r in parse_csv(_bank(*rows), BANK)]
    assert found == [None, None, None, None, PAY]


def test_bank_ids_are_stable_across_files_and_count_identical_rows() -> None:
    row = f"24/11/2026,24/11/2026,RAAST CR {PAY},,,100.00,500.00"
    same_row_again = f"24/11/2026,24/11/2026,RAAST CR {PAY},,,100.00,500.00"
    other = "23/11/2026,23/11/2026,OPENING,,,5.00,400.00"
    first = parse_csv(_bank(row, same_row_again), BANK)
    overlapping = parse_csv(_bank(other, row, same_row_again), BANK)
    assert first[1].external_id == first[0].external_id + "#2"
    assert [r.external_id for r in overlapping[1:]] == [r.external_id for r in first]
    assert [r.location for r in overlapping[1:]] == ["line 3", "line 4"]


# -- Refusals, each with its line ------------------------------------------------------------


def test_every_faulty_row_is_named_and_nothing_is_read() -> None:
    errors = _refused(
        _rail(
            _row("trf_1", amount="15.001"),
            _row("trf_2"),
            _row("trf_3", direction="sideways"),
            _row("trf_4", on="2026-13-01"),
            _row("trf_5", amount="0.00"),
            _row("trf_6", amount="-5.00"),
            _row("trf_7", currency="XYZ"),
            _row("trf_8", amount="abc"),
            _row("trf_9", fee="-1.00"),
            _row("trf_10", amount="1.00", fee="1.00"),
            "trf_11,,credit,1.00",
            _row(""),
        )
    )
    assert errors == [
        ("line 2", "amount: 15.001 has more than 2 decimals"),
        ("line 4", "direction: 'sideways' is not credit or debit"),
        ("line 5", "settlement_date: '2026-13-01' is not a date (%Y-%m-%d)"),
        ("line 6", "amount: 0.00 is not a positive amount"),
        ("line 7", "amount: -5.00 is not a positive amount"),
        ("line 8", "currency 'XYZ' is not supported"),
        ("line 9", "amount: 'abc' is not an amount"),
        ("line 10", "fee: -1.00 is negative"),
        ("line 11", "the fee is not less than the amount it comes out of"),
        ("line 12", "4 fields; the header has 9"),
        ("line 13", "transfer_id is empty"),
    ]


def test_a_transfer_twice_in_one_file_is_refused() -> None:
    errors = _refused(_rail(_row("trf_1"), _row("trf_2"), _row("trf_1"), _row("trf_1")))
    assert errors == [
        ("line 4", "'trf_1' again: it was on line 2"),
        ("line 5", "'trf_1' again: it was on line 2"),
    ]


def test_a_missing_or_repeated_header_column_is_refused() -> None:
    data = b"transfer_id,end_to_end_id,direction,amount,amount,settled_at,settlement_date,fee\n"
    assert _refused(data) == [
        ("line 1", "the header has no column 'batch_id'"),
        ("line 1", "the header has no column 'currency'"),
        ("line 1", "the header has the column 'amount' 2 times"),
    ]


def test_an_empty_file_has_no_header() -> None:
    assert _refused(b"") == [("line 1", "the file is empty; a header row is required")]
    assert _refused(b"\xef\xbb\xbf") == [("line 1", "the file is empty; a header row is required")]


def test_nul_bytes_and_undecodable_text_are_refused_at_their_line() -> None:
    assert _refused(_rail(_row("trf_1"), _row("trf\x00_2"))) == [
        ("line 3", "a NUL byte: this is not a text file")
    ]
    latin1 = _rail(_row("trf_1")) + "trf_2,,credit,1.00,PKR,x,2026-11-24,Café,\n".encode("latin-1")
    assert _refused(latin1) == [("line 3", "bytes that are not utf-8 text")]


def test_broken_quoting_is_refused_where_it_starts() -> None:
    data = _rail(_row("trf_1"), '"trf_2,' + PAY + ",credit,1.00,PKR,x,2026-11-24,,")
    [(location, message)] = _refused(data)
    assert location == "line 3" and "unreadable CSV" in message


def test_size_and_row_limits_are_enforced() -> None:
    data = _rail(_row("trf_1"), _row("trf_2"), _row("trf_3"))
    assert _refused(data, max_bytes=len(data) - 1)[0][0] == "file"
    assert _refused(data, max_rows=2) == [("line 4", "more than 2 rows")]
    assert len(parse_csv(data, RAIL, max_rows=3)) == 3


def test_faults_stop_at_the_cap() -> None:
    with pytest.raises(StatementRejected) as refused:
        parse_csv(_rail(*(_row(f"trf_{i}", amount="x") for i in range(250))), RAIL)
    assert len(refused.value.errors) == 100 and refused.value.truncated
    assert refused.value.errors[-1].location == "line 101"


def test_bank_rows_with_both_or_neither_amount_are_refused() -> None:
    errors = _refused(
        _bank(
            "24/11/2026,24/11/2026,A,,1.00,2.00,0",
            "24/11/2026,24/11/2026,B,,,,0",
            "24/11/2026,24/11/2026,C,,0.00,,0",
            "24/11/2026,24/11/2026,D,,-1.00,,0",
            "2026-11-24,24/11/2026,E,,1.00,,0",
            '24/11/2026,24/11/2026,F,,"1,50.00",,0',
        ),
        BANK,
    )
    assert errors == [
        ("line 2", "both Debit and Credit have an amount"),
        ("line 3", "neither Debit nor Credit has an amount"),
        ("line 4", "neither Debit nor Credit has an amount"),
        ("line 5", "a negative amount in Debit or Credit"),
        ("line 6", "Transaction Date: '2026-11-24' is not a date (%d/%m/%Y)"),
        ("line 7", "Debit: '1,50.00' is not an amount"),
    ]


# -- Other layouts ---------------------------------------------------------------------------

SIGNED = CsvProfile(
    name="signed",
    external_id_column="id",
    amount_column="amount",
    fixed_currency="USD",
    value_date_column="date",
)


def test_a_signed_amount_says_the_direction() -> None:
    data = b"id,amount,date\na,-12.50,2026-11-24\nb,+3,2026-11-24\nc, 4.5 ,2026-11-24\n"
    records = parse_csv(data, SIGNED)
    assert [(r.direction, r.amount, r.currency) for r in records] == [
        (Direction.DEBIT, 1250, "USD"),
        (Direction.CREDIT, 300, "USD"),
        (Direction.CREDIT, 450, "USD"),
    ]
    assert _refused(b"id,amount,date\na,0,2026-11-24\n", SIGNED) == [("line 2", "amount is zero")]


def test_a_profile_must_say_where_the_amount_and_currency_are() -> None:
    with pytest.raises(ValueError, match="amount column"):
        CsvProfile(name="x", value_date_column="d", fixed_currency="PKR")
    with pytest.raises(ValueError, match="currency"):
        CsvProfile(name="x", value_date_column="d", amount_column="a")
    with pytest.raises(ValueError, match="amount column"):
        CsvProfile(
            name="x",
            value_date_column="d",
            fixed_currency="PKR",
            amount_column="a",
            debit_column="b",
            credit_column="c",
        )


def test_read_records_reads_each_profile() -> None:
    assert read_records(_rail(_row("trf_1")), "sandbox_rail")[0].external_id == "trf_1"
    assert read_records(_bank("24/11/2026,24/11/2026,A,,,1.00,1"), "bank_csv")[0].amount == 100


# -- Round trip ------------------------------------------------------------------------------

_ID_CHARACTERS = st.characters(codec="ascii", categories=["L", "N"], include_characters="_-")
# Commas and quotes in a batch id make the writer quote it, which sends the file through
# the csv module instead of the fast split.
_BATCH_CHARACTERS = st.characters(codec="ascii", categories=["L", "N"], include_characters=',"_')


@st.composite
def _rail_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(min_value=1, max_value=30))
    ids = draw(
        st.lists(st.text(_ID_CHARACTERS, min_size=1, max_size=12), min_size=count,
                 max_size=count, unique=True)
    )  # fmt: skip
    rows = []
    for transfer_id in ids:
        currency = draw(st.sampled_from(["PKR", "USD", "JPY", "KWD"]))
        amount = draw(st.integers(min_value=1, max_value=10**12))
        rows.append(
            {
                "transfer_id": transfer_id,
                "end_to_end_id": draw(st.sampled_from(["", PAY, PAY_2])),
                "direction": draw(st.sampled_from(list(Direction))),
                "amount": amount,
                "currency": currency,
                "settlement_date": draw(st.dates(date(2020, 1, 1), date(2035, 12, 31))),
                "batch_id": draw(st.text(_BATCH_CHARACTERS, max_size=8)),
                "fee": draw(st.none() | st.integers(min_value=0, max_value=amount - 1)),
            }
        )
    return rows


def _major(minor: int, currency: str) -> str:
    exponent = CURRENCY_EXPONENTS[currency]
    whole, fraction = divmod(minor, 10**exponent)
    return f"{whole}.{fraction:0{exponent}d}" if exponent else str(whole)


def _written(rows: list[dict[str, Any]], line_end: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=line_end)
    writer.writerow(RAIL_HEADER.split(","))
    for row in rows:
        settled = datetime.combine(row["settlement_date"], time(9, 30), UTC)
        fee = "" if row["fee"] is None else _major(row["fee"], row["currency"])
        writer.writerow(
            [
                row["transfer_id"],
                row["end_to_end_id"],
                row["direction"].value,
                _major(row["amount"], row["currency"]),
                row["currency"],
                settled.isoformat().replace("+00:00", "Z"),
                row["settlement_date"].isoformat(),
                row["batch_id"],
                fee,
            ]
        )
    return out.getvalue().encode()


@settings(max_examples=150, deadline=None)
@given(rows=_rail_rows(), line_end=st.sampled_from(["\n", "\r\n"]))
def test_rail_reports_round_trip_exactly(rows: list[dict[str, Any]], line_end: str) -> None:
    expected = [
        ExternalRecord(
            external_id=row["transfer_id"],
            direction=row["direction"],
            # Booked: less the fee on money in, plus it on money out.
            amount=row["amount"] + (row["fee"] or 0) * (1 if row["direction"] == "debit" else -1),
            currency=row["currency"],
            value_date=row["settlement_date"],
            end_to_end_id=row["end_to_end_id"] or None,
            batch_reference=row["batch_id"] or None,
            fees=row["fee"] or 0,
            location=f"line {number}",
        )
        for number, row in enumerate(rows, start=2)
    ]
    records = parse_csv(_written(rows, line_end), RAIL)
    assert records == expected
    assert sum(
        r.amount + (r.fees if r.direction is Direction.CREDIT else -r.fees) for r in records
    ) == sum(row["amount"] for row in rows)

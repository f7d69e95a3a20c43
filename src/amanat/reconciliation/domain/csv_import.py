"""Settlement reports and bank statements that come as CSV, read by a per-source profile.

Every source writes its CSV differently: which columns hold the id, the dates and the
amount, whether the amount is signed, paired with a direction, or split into debit and
credit columns, how dates are written. A :class:`CsvProfile` says so for one source, and
:func:`parse_csv` turns its rows into :class:`ExternalRecord` s, or refuses the whole file
with every faulty line named (a report with a bad row cannot be trusted to be complete).

The rail's report has a row per transfer, a million on a busy day, so the common case is
kept cheap: a file without quotes is split with ``str.split`` rather than the csv module,
an amount like ``1500.00`` becomes minor units by string operations (the precompiled
pattern only looks at what that misses), each distinct date is parsed once, and the
records are made a field at a time once every row has been read (:func:`_records`).
"""

from __future__ import annotations

import csv
import io
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import date, datetime
from enum import StrEnum
from itertools import repeat
from types import MemberDescriptorType
from typing import NoReturn

from amanat.kernel.money import CURRENCY_EXPONENTS, MAX_AMOUNT_MINOR
from amanat.reconciliation.domain.collector import collector_paused
from amanat.reconciliation.domain.errors import ErrorCollector, FileError, StatementRejected
from amanat.reconciliation.domain.external_ids import Occurrences, digest_id
from amanat.reconciliation.domain.records import Direction, ExternalRecord

DEFAULT_MAX_BYTES = 200 * 2**20
DEFAULT_MAX_ROWS = 5_000_000

# amanat's ids (``pay_01JD5Z8K3N4Q6R7S8T9V0W1X2Y``): a short prefix and a ULID in Crockford
# base32, as a bank prints them inside a payment's description.
AMANAT_ID_PATTERN = r"(?<![A-Za-z0-9_])[a-z]{2,4}_[0-9A-HJKMNP-TV-Z]{26}(?![A-Za-z0-9])"


class AmountLayout(StrEnum):
    SIGNED = "signed"  # one column, negative for debits
    WITH_DIRECTION = "with_direction"  # one positive column, and one saying which way
    DEBIT_CREDIT = "debit_credit"  # two columns, one of them filled on each row


@dataclass(frozen=True, slots=True)
class CsvProfile:
    """How one source writes its CSV. Column names are the header's, matched exactly
    (surrounding spaces aside); a header row is required, further columns are ignored.

    The amount comes from ``amount_column`` alone (signed), or with ``direction_column``
    (whose ``credit_values``/``debit_values`` say which way), or from ``debit_column`` and
    ``credit_column``. ``amounts_are_gross``: the amount is the payment's, and what was
    booked is that less the fee (money in) or plus it (money out). Without
    ``external_id_column`` a record's id is a digest of its fields and of
    ``digest_columns``. ``end_to_end_id_pattern`` finds the
    end-to-end id in the ``end_to_end_id_sources`` columns when no column holds it.
    """

    name: str
    value_date_column: str
    date_format: str = "%Y-%m-%d"
    delimiter: str = ","
    encoding: str = "utf-8"  # a byte-order mark is allowed and skipped
    external_id_column: str | None = None
    end_to_end_id_column: str | None = None
    reference_column: str | None = None
    batch_reference_column: str | None = None
    booking_date_column: str | None = None
    currency_column: str | None = None
    fixed_currency: str | None = None
    amount_column: str | None = None
    direction_column: str | None = None
    credit_values: frozenset[str] = frozenset({"credit", "CR", "C"})
    debit_values: frozenset[str] = frozenset({"debit", "DR", "D"})
    debit_column: str | None = None
    credit_column: str | None = None
    fee_column: str | None = None
    amounts_are_gross: bool = False
    thousands_separator: str | None = None
    end_to_end_id_pattern: str | None = None
    end_to_end_id_sources: tuple[str, ...] = ()
    digest_columns: tuple[str, ...] = ()
    other_columns: tuple[str, ...] = ()  # required in the header, not read

    def __post_init__(self) -> None:
        if (self.currency_column is None) == (self.fixed_currency is None):
            raise ValueError(f"{self.name}: give a currency column or a fixed currency")
        if self.fixed_currency is not None and self.fixed_currency not in CURRENCY_EXPONENTS:
            raise ValueError(f"{self.name}: {self.fixed_currency} is not a supported currency")
        self.layout  # noqa: B018 (refuses an unclear amount layout now, not at first use)
        if len(self.delimiter) != 1:
            raise ValueError(f"{self.name}: the delimiter is one character")

    @property
    def layout(self) -> AmountLayout:
        if self.amount_column and not (self.debit_column or self.credit_column):
            return AmountLayout.WITH_DIRECTION if self.direction_column else AmountLayout.SIGNED
        if self.debit_column and self.credit_column and not self.amount_column:
            return AmountLayout.DEBIT_CREDIT
        raise ValueError(
            f"{self.name}: give an amount column (and maybe a direction column), "
            "or a debit and a credit column"
        )

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the header must have."""
        named = (
            self.external_id_column,
            self.end_to_end_id_column,
            self.reference_column,
            self.batch_reference_column,
            self.value_date_column,
            self.booking_date_column,
            self.currency_column,
            self.amount_column,
            self.direction_column,
            self.debit_column,
            self.credit_column,
            self.fee_column,
            *self.end_to_end_id_sources,
            *self.digest_columns,
            *self.other_columns,
        )
        return tuple(dict.fromkeys(name for name in named if name))


PROFILES: dict[str, CsvProfile] = {
    profile.name: profile
    for profile in (
        # transfer_id,end_to_end_id,direction,amount,currency,settled_at,settlement_date,
        # batch_id,fee: the rail's daily report, one row per settled transfer.
        CsvProfile(
            name="sandbox_rail",
            external_id_column="transfer_id",
            end_to_end_id_column="end_to_end_id",
            direction_column="direction",
            credit_values=frozenset({"credit"}),
            debit_values=frozenset({"debit"}),
            amount_column="amount",
            currency_column="currency",
            value_date_column="settlement_date",
            batch_reference_column="batch_id",
            fee_column="fee",
            amounts_are_gross=True,
            # The instant adds nothing to matching: the settlement date is the business date.
            other_columns=("settled_at",),
        ),
        # Transaction Date,Value Date,Description,Reference,Debit,Credit,Balance: a
        # Pakistani bank's statement export. Banks give no row id, so the id is a digest;
        # the balance after the row tells two equal transfers of one day apart.
        CsvProfile(
            name="bank_csv",
            booking_date_column="Transaction Date",
            value_date_column="Value Date",
            date_format="%d/%m/%Y",
            reference_column="Reference",
            debit_column="Debit",
            credit_column="Credit",
            fixed_currency="PKR",
            thousands_separator=",",
            end_to_end_id_pattern=AMANAT_ID_PATTERN,
            end_to_end_id_sources=("Description", "Reference"),
            digest_columns=("Description", "Balance"),
        ),
    )
}


def parse_csv(
    data: bytes,
    profile: CsvProfile,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> list[ExternalRecord]:
    """The file's rows as external records, in file order; or :class:`StatementRejected`
    naming every faulty line (up to 100)."""
    if len(data) > max_bytes:
        _reject("file", f"the file has {len(data)} bytes; at most {max_bytes} are read")
    if (nul := data.find(b"\x00")) >= 0:
        _reject(f"line {_line_at(data, nul)}", "a NUL byte: this is not a text file")
    text = _decode(data, profile.encoding)
    errors = ErrorCollector()
    rows = _rows(text, profile.delimiter, errors)
    header = next(rows, None)
    if header is None:
        errors.raise_if_any()  # quoting so broken that not even the header reads
        _reject("line 1", "the file is empty; a header row is required")
    indexes = _header_indexes(header[1], profile, errors)
    errors.raise_if_any()
    with collector_paused():
        records = _RowReader(profile, indexes, len(header[1]), errors).read(rows, max_rows)
    errors.raise_if_any()
    return records


def _reject(location: str, message: str) -> NoReturn:
    raise StatementRejected([FileError(location, message)])


def _line_at(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _decode(data: bytes, encoding: str) -> str:
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        return data.decode(codec)
    except UnicodeDecodeError as error:
        _reject(f"line {_line_at(data, error.start)}", f"bytes that are not {encoding} text")


def _rows(text: str, delimiter: str, errors: ErrorCollector) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each non-blank row: a file without quotes or stray
    carriage returns by ``str.split`` (the fields the csv module would find, several times
    faster), any other by the csv module."""
    if '"' not in text:
        unix = text.replace("\r\n", "\n") if "\r" in text else text
        if "\r" not in unix:
            lines = unix.split("\n")
            if lines[-1] == "":
                lines.pop()  # the last line's end
            if "" not in lines:  # no blank line to skip: map splits them all in C
                return enumerate(map(str.split, lines, repeat(delimiter)), start=1)
            return (
                (number, line.split(delimiter))
                for number, line in enumerate(lines, start=1)
                if line
            )
    return _csv_rows(text, delimiter, errors)


def _csv_rows(text: str, delimiter: str, errors: ErrorCollector) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    while True:
        first_line = reader.line_num + 1  # a quoted field may span lines: name the first
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            # Broken quoting leaves no reliable row boundary after it: stop here.
            errors.add(f"line {first_line}", f"unreadable CSV: {error}")
            return
        if row:
            yield first_line, row


def _header_indexes(
    header: list[str], profile: CsvProfile, errors: ErrorCollector
) -> dict[str, int]:
    names = [name.strip() for name in header]
    indexes: dict[str, int] = {}
    for name in profile.columns:
        positions = [i for i, found in enumerate(names) if found == name]
        if not positions:
            errors.add("line 1", f"the header has no column {name!r}")
        elif len(positions) > 1:
            errors.add("line 1", f"the header has the column {name!r} {len(positions)} times")
        else:
            indexes[name] = positions[0]
    return indexes


class _RowReader:
    """Turns one file's rows into records for one profile, noting every faulty row.

    :meth:`read` is the hot loop: it keeps what it uses in locals, reads the common case
    inline and leaves the rest (faults, amounts the fast path does not take, dates not
    seen before, digests) to the other methods. It gathers each field in a column and
    makes the records at the end (:func:`_records`).
    """

    def __init__(
        self, profile: CsvProfile, indexes: dict[str, int], width: int, errors: ErrorCollector
    ) -> None:
        self.profile = profile
        self.index = indexes
        self.width = width
        self.errors = errors
        self.dates: dict[str, date | None] = {}
        self.separator = profile.thousands_separator or ""
        grouped = rf"\d{{1,3}}(?:{re.escape(self.separator)}\d{{3}})+|" if self.separator else ""
        self.amount_pattern = re.compile(rf"([+-]?)({grouped}\d+)(?:\.(\d+))?", re.ASCII)
        pattern = profile.end_to_end_id_pattern
        self.e2e_pattern = re.compile(pattern) if pattern else None
        self.directions: dict[str, Direction] = {
            **dict.fromkeys(profile.debit_values, Direction.DEBIT),
            **dict.fromkeys(profile.credit_values, Direction.CREDIT),
        }
        self.folded_directions = {key.lower(): value for key, value in self.directions.items()}

    def at(self, column: str | None) -> int | None:
        return self.index[column] if column else None

    def read(self, rows: Iterable[tuple[int, list[str]]], max_rows: int) -> list[ExternalRecord]:
        profile = self.profile
        fault = self.errors.add
        found_errors = self.errors.errors
        dates = self.dates
        directions = self.directions
        exponents = CURRENCY_EXPONENTS
        width = self.width
        id_at = self.at(profile.external_id_column)
        e2e_at = self.at(profile.end_to_end_id_column)
        reference_at = self.at(profile.reference_column)
        batch_at = self.at(profile.batch_reference_column)
        value_date_at = self.index[profile.value_date_column]
        booking_date_at = self.at(profile.booking_date_column)
        currency_at = self.at(profile.currency_column)
        # Read only with a direction column, which the amount column then comes with.
        amount_at = self.index.get(profile.amount_column or "", -1)
        direction_at = self.index.get(profile.direction_column or "", -1)
        fee_at = self.at(profile.fee_column)
        with_direction = profile.layout is AmountLayout.WITH_DIRECTION
        fixed_currency = profile.fixed_currency or ""
        gross = profile.amounts_are_gross
        occurrences = Occurrences()
        columns = _Columns()
        add_external_id = columns.external_id.append
        add_direction = columns.direction.append
        add_amount = columns.amount.append
        add_currency = columns.currency.append
        add_value_date = columns.value_date.append
        add_booking_date = columns.booking_date.append
        add_end_to_end_id = columns.end_to_end_id.append
        add_reference = columns.reference.append
        add_batch_reference = columns.batch_reference.append
        add_fees = columns.fees.append
        add_location = columns.location.append
        for count, (line, fields) in enumerate(rows, start=1):
            location = f"line {line}"
            if count > max_rows:
                fault(location, f"more than {max_rows} rows")
                break
            if len(fields) != width:
                fault(location, f"{len(fields)} fields; the header has {width}")
                continue
            faults_before = len(found_errors)

            currency = fields[currency_at] if currency_at is not None else fixed_currency
            exponent = exponents.get(currency)
            if exponent is None:
                currency = currency.strip()
                exponent = exponents.get(currency)
            if exponent is None:
                fault(location, f"currency {_shown(currency)} is not supported")
                continue
            if with_direction:
                text = fields[amount_at]
                amount = _fast_minor(text, exponent) or self.amount(text, exponent, location)
                direction = directions.get(fields[direction_at]) or self.direction(
                    fields[direction_at], location
                )
            else:
                amount, direction = self.amount_and_direction(fields, exponent, location)
            fee = 0
            if fee_at is not None and (text := fields[fee_at]):
                fee = _fast_minor(text, exponent) or self.fee(text, exponent, location)
            value_date = dates.get(fields[value_date_at]) or self.date(
                fields[value_date_at], profile.value_date_column, location
            )
            booking_date = None
            if booking_date_at is not None:
                booking_date = dates.get(fields[booking_date_at]) or self.date(
                    fields[booking_date_at], profile.booking_date_column, location
                )
            if len(found_errors) > faults_before or amount is None or direction is None:
                continue
            if gross and fee:
                if direction is Direction.DEBIT:
                    amount += fee  # money out: the bank took the payment and its fee
                elif fee >= amount:
                    fault(location, "the fee is not less than the amount it comes out of")
                    continue
                else:
                    amount -= fee  # money in: the bank kept its fee

            end_to_end_id = (fields[e2e_at].strip() or None) if e2e_at is not None else None
            if end_to_end_id is None and self.e2e_pattern is not None:
                end_to_end_id = self.found_end_to_end_id(fields)
            reference = (fields[reference_at].strip() or None) if reference_at is not None else None
            if id_at is not None:
                external_id = fields[id_at].strip()
                if not external_id:
                    fault(location, f"{profile.external_id_column} is empty")
                    continue
            else:
                digest = self.digest(
                    fields,
                    (value_date, booking_date, amount, currency, direction, end_to_end_id),
                    reference,
                )
                external_id = occurrences.number(digest)

            add_external_id(external_id)
            add_direction(direction)
            add_amount(amount)
            add_currency(currency)
            add_value_date(value_date)
            add_booking_date(booking_date)
            add_end_to_end_id(end_to_end_id)
            add_reference(reference)
            add_batch_reference(
                (fields[batch_at].strip() or None) if batch_at is not None else None
            )
            add_fees(fee)
            add_location(location)
        if id_at is not None:
            self.check_unique(columns)
        return _records(columns)

    def check_unique(self, columns: _Columns) -> None:
        """Each id once per file. Checked at the end, by a set built in C, because a
        dict kept row by row cost a fifth of the parse for what is nearly always true."""
        ids = columns.external_id
        if len(set(ids)) == len(ids):
            return
        first_location: dict[str, str] = {}
        for external_id, location in zip(ids, columns.location, strict=True):
            first = first_location.setdefault(external_id, location)
            if first is not location:
                self.errors.add(location, f"{external_id!r} again: it was on {first}")

    def amount(self, text: str, exponent: int, location: str) -> int | None:
        """A positive amount the fast path did not take, or None with the fault noted."""
        column = self.profile.amount_column or ""
        minor = self.minor(text, exponent, location, column)
        if minor is not None and minor <= 0:
            self.errors.add(location, f"{column}: {text.strip()} is not a positive amount")
            return None
        return minor

    def fee(self, text: str, exponent: int, location: str) -> int:
        column = self.profile.fee_column or ""
        minor = self.minor(text, exponent, location, column)
        if minor is not None and minor < 0:
            self.errors.add(location, f"{column}: {text.strip()} is negative")
        return minor or 0

    def minor(self, text: str, exponent: int, location: str, column: str) -> int | None:
        """Signed minor units of a decimal amount (thousands grouped or not, at most the
        currency's decimals), or None with the fault noted."""
        match = self.amount_pattern.fullmatch(text.strip())
        if match is None:
            self.errors.add(location, f"{column}: {_shown(text)} is not an amount")
            return None
        sign, whole, fraction = match.groups()
        fraction = fraction or ""
        if len(fraction) > exponent:
            self.errors.add(location, f"{column}: {text.strip()} has more than {exponent} decimals")
            return None
        digits = (whole.replace(self.separator, "") if self.separator else whole) + fraction
        minor: int = int(digits) * 10 ** (exponent - len(fraction))
        if minor > MAX_AMOUNT_MINOR:
            self.errors.add(location, f"{column}: {text.strip()} is too large")
            return None
        return -minor if sign == "-" else minor

    def direction(self, text: str, location: str) -> Direction | None:
        direction = self.folded_directions.get(text.strip().lower())
        if direction is None:
            column = self.profile.direction_column
            expected = " or ".join(sorted(self.directions))
            self.errors.add(location, f"{column}: {_shown(text)} is not {expected}")
        return direction

    def amount_and_direction(
        self, fields: list[str], exponent: int, location: str
    ) -> tuple[int | None, Direction | None]:
        """A signed amount column, or a debit and a credit column."""
        profile = self.profile
        if profile.layout is AmountLayout.SIGNED:
            column = profile.amount_column or ""
            signed = self.minor(fields[self.index[column]], exponent, location, column)
            if signed == 0:
                self.errors.add(location, f"{column} is zero")
            if not signed:
                return None, None
            return abs(signed), Direction.DEBIT if signed < 0 else Direction.CREDIT
        # A bank may write 0.00 in the column that does not apply: that counts as empty.
        debit_column, credit_column = profile.debit_column or "", profile.credit_column or ""
        debit_text = fields[self.index[debit_column]]
        credit_text = fields[self.index[credit_column]]
        debit = (
            self.minor(debit_text, exponent, location, debit_column) if debit_text.strip() else 0
        )
        credit = (
            self.minor(credit_text, exponent, location, credit_column) if credit_text.strip() else 0
        )
        if debit is None or credit is None:
            return None, None
        if debit < 0 or credit < 0:
            self.errors.add(location, f"a negative amount in {debit_column} or {credit_column}")
        elif debit and credit:
            self.errors.add(location, f"both {debit_column} and {credit_column} have an amount")
        elif debit or credit:
            return (debit, Direction.DEBIT) if debit else (credit, Direction.CREDIT)
        else:
            self.errors.add(location, f"neither {debit_column} nor {credit_column} has an amount")
        return None, None

    def date(self, text: str, column: str | None, location: str) -> date | None:
        if text not in self.dates:
            try:
                self.dates[text] = datetime.strptime(text.strip(), self.profile.date_format).date()
            except ValueError:
                self.dates[text] = None
        value = self.dates[text]
        if value is None:
            written = f"{_shown(text)} is not" if text.strip() else "empty, not"
            self.errors.add(location, f"{column}: {written} a date ({self.profile.date_format})")
        return value

    def found_end_to_end_id(self, fields: list[str]) -> str | None:
        assert self.e2e_pattern is not None
        for column in self.profile.end_to_end_id_sources:
            if found := self.e2e_pattern.search(fields[self.index[column]]):
                return found.group(0)
        return None

    def digest(self, fields: list[str], values: tuple[object, ...], reference: str | None) -> str:
        """What the record says, and the profile's digest columns as written."""
        extra = [fields[self.index[column]].strip() for column in self.profile.digest_columns]
        return digest_id([*values, reference, *extra])


def _fast_minor(text: str, exponent: int) -> int | None:
    """``"1500.00"`` -> 150000 by string operations: a plain positive amount written with
    exactly the currency's decimals. None for anything else, zero included (the slow path
    reads it, or says what is wrong with it)."""
    whole, dot, fraction = text.partition(".")
    digits = whole + fraction
    if (
        whole
        and len(fraction) == exponent
        and (dot or not exponent)
        and len(digits) <= 15  # below MAX_AMOUNT_MINOR
        and digits.isdigit()
        and digits.isascii()
    ):
        return int(digits) or None
    return None


def _shown(text: str) -> str:
    """A value quoted for an error message, cut short: files can hold anything."""
    return repr(text if len(text) <= 40 else text[:37] + "...")


# -- Making the records ----------------------------------------------------------------------


@dataclass(slots=True)
class _Columns:
    """The records' fields, a list each, in row order."""

    external_id: list[str] = field(default_factory=list)
    direction: list[Direction] = field(default_factory=list)
    amount: list[int] = field(default_factory=list)
    currency: list[str] = field(default_factory=list)
    value_date: list[date | None] = field(default_factory=list)
    booking_date: list[date | None] = field(default_factory=list)
    end_to_end_id: list[str | None] = field(default_factory=list)
    reference: list[str | None] = field(default_factory=list)
    batch_reference: list[str | None] = field(default_factory=list)
    fees: list[int] = field(default_factory=list)
    location: list[str] = field(default_factory=list)


_RECORD_FIELDS = tuple(f.name for f in dataclass_fields(ExternalRecord))
# Setting a frozen dataclass's slots directly, a column at a time, makes a million records
# in a third of the time ExternalRecord(...) takes (its __init__ calls object.__setattr__
# per field). Only sound while the class checks nothing on construction and keeps its
# fields in slots; otherwise records are made the ordinary way.
_SLOTS_SETTABLE = not hasattr(ExternalRecord, "__post_init__") and all(
    isinstance(getattr(ExternalRecord, name, None), MemberDescriptorType) for name in _RECORD_FIELDS
)


def _records(columns: _Columns) -> list[ExternalRecord]:
    count = len(columns.external_id)
    values: dict[str, Iterable[object]] = {
        "members": repeat((), count),
        "uetr": repeat(None, count),
        **{name: getattr(columns, name) for name in _Columns.__dataclass_fields__},
    }
    if not _SLOTS_SETTABLE:
        return [
            ExternalRecord(**dict(zip(_RECORD_FIELDS, row, strict=True)))
            for row in zip(*(values[name] for name in _RECORD_FIELDS), strict=True)
        ]
    records: list[ExternalRecord] = list(map(object.__new__, repeat(ExternalRecord, count)))
    for name in _RECORD_FIELDS:
        set_slot = getattr(ExternalRecord, name).__set__
        deque(map(set_slot, records, values[name]), maxlen=0)
    return records

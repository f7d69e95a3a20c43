"""Pakistani account and party identifiers: IBANs, CNICs and Raast IDs (mobile numbers).

Every type here is a frozen value object whose constructor *is* its parser: building one
from any accepted spelling normalises it to the canonical form, and anything else raises
:class:`~amanat.kernel.errors.InvalidInput` with a family ``code`` (``invalid_iban``,
``invalid_cnic``, ``invalid_raast_id``) and a precise snake_case ``reason``.

The canonical forms are sensitive data. ``str()`` returns them (callers need them to pay
someone), but ``repr()`` is masked so a value that strays into a log line or a traceback
never shows in full. Error messages never echo the input for the same reason.

IBAN bank codes are checked against ``data/sbp_banks.csv`` (see ``data/SOURCES.md``).
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib.resources import files

from amanat.kernel.errors import InvalidInput

__all__ = [
    "BANK_KINDS",
    "Bank",
    "Cnic",
    "Iban",
    "RaastId",
    "bank_by_code",
    "banks",
    "iban_check_digits",
    "make_iban",
    "parse_cnic",
    "parse_iban",
    "parse_mobile",
    "parse_raast_id",
]

_DIGITS = frozenset("0123456789")
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
_ALNUM = _DIGITS | _UPPER

# --------------------------------------------------------------------------------------
# Banks
# --------------------------------------------------------------------------------------

BANK_KINDS: frozenset[str] = frozenset(
    {"commercial", "islamic", "microfinance", "specialized", "foreign", "public", "emi"}
)
"""``emi``: an SBP-licensed electronic money institution that issues PK IBANs."""


@dataclass(frozen=True, slots=True)
class Bank:
    """An institution that issues Pakistani IBANs, keyed by its 4-letter IBAN bank code."""

    code: str
    name: str
    imd: str | None
    kind: str


@functools.cache
def banks() -> tuple[Bank, ...]:
    """Every bank in the shipped table, sorted by code. Read once, then cached."""
    resource = files("amanat.kernel") / "data" / "sbp_banks.csv"
    text = resource.read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    loaded: list[Bank] = []
    for lineno, row in enumerate(rows, start=2):
        code = (row.get("code") or "").strip()
        name = (row.get("name") or "").strip()
        imd = (row.get("imd") or "").strip() or None
        kind = (row.get("kind") or "").strip()
        if len(code) != 4 or not set(code) <= _UPPER:
            raise ValueError(f"sbp_banks.csv line {lineno}: bad bank code {code!r}")
        if not name:
            raise ValueError(f"sbp_banks.csv line {lineno}: missing name")
        if imd is not None and (len(imd) != 6 or not set(imd) <= _DIGITS):
            raise ValueError(f"sbp_banks.csv line {lineno}: IMD must be 6 digits")
        if kind not in BANK_KINDS:
            raise ValueError(f"sbp_banks.csv line {lineno}: unknown kind {kind!r}")
        loaded.append(Bank(code=code, name=name, imd=imd, kind=kind))
    codes = [bank.code for bank in loaded]
    if len(set(codes)) != len(codes):
        raise ValueError("sbp_banks.csv: duplicate bank codes")
    return tuple(sorted(loaded, key=lambda bank: bank.code))


@functools.cache
def _banks_by_code() -> dict[str, Bank]:
    return {bank.code: bank for bank in banks()}


def bank_by_code(code: str) -> Bank | None:
    """The bank with this IBAN bank code (case-insensitive), or ``None``."""
    return _banks_by_code().get(code.strip().upper())


# --------------------------------------------------------------------------------------
# IBAN
# --------------------------------------------------------------------------------------

PK_IBAN_LENGTH = 24


def _iban_error(message: str, reason: str) -> InvalidInput:
    return InvalidInput(message, code="invalid_iban", reason=reason)


def _mod97(alnum: str) -> int:
    """ISO 7064 MOD 97-10 of an alphanumeric string (letters count as A=10 … Z=35)."""
    remainder = 0
    for char in alnum:
        value = int(char, 36)
        remainder = (remainder * (100 if value > 9 else 10) + value) % 97
    return remainder


def iban_check_digits(bank_code: str, account16: str) -> str:
    """The two ISO 13616 check digits of the PK IBAN for ``bank_code`` + ``account16``.

    Works for any 4-letter code (known or not), so tests and sandbox seeds can build
    IBANs, including deliberately unknown-bank ones.
    """
    if len(bank_code) != 4 or not set(bank_code) <= _UPPER:
        raise _iban_error("The bank code must be 4 uppercase letters (A-Z).", "bad_format")
    if len(account16) != 16 or not set(account16) <= _DIGITS:
        raise _iban_error("The account number must be exactly 16 digits (0-9).", "bad_format")
    remainder = _mod97(f"{bank_code}{account16}PK00")
    return f"{98 - remainder:02d}"


def _normalize_iban(raw: object) -> str:
    if not isinstance(raw, str):
        raise _iban_error("An IBAN must be given as a string.", "bad_characters")
    value = "".join(raw.split())
    if not value:
        raise _iban_error("The IBAN is empty.", "empty")
    # Check before upper(): "ß".upper() == "SS", "ſ".upper() == "S", and so on.
    if not set(value) <= _ALNUM | _LOWER:
        raise _iban_error(
            "An IBAN may contain only the letters A-Z, digits 0-9 and spaces.", "bad_characters"
        )
    value = value.upper()
    if not "PK".startswith(value[:2]):
        raise _iban_error("Only Pakistani IBANs (starting 'PK') are accepted.", "wrong_country")
    if len(value) != PK_IBAN_LENGTH:
        raise _iban_error(
            f"A Pakistani IBAN has exactly {PK_IBAN_LENGTH} characters; got {len(value)}.",
            "wrong_length",
        )
    check, bank_code, account = value[2:4], value[4:8], value[8:]
    if not set(check) <= _DIGITS:
        raise _iban_error("Characters 3-4 of an IBAN (check digits) must be digits.", "bad_format")
    if not set(bank_code) <= _UPPER:
        raise _iban_error("Characters 5-8 of a PK IBAN (bank code) must be letters.", "bad_format")
    if not set(account) <= _DIGITS:
        raise _iban_error("Characters 9-24 of a PK IBAN (account) must be digits.", "bad_format")
    # ISO 13616 check digits run 02..98; 00, 01 and 99 can pass mod-97 but are never issued.
    if check in {"00", "01", "99"} or _mod97(value[4:] + value[:4]) != 1:
        raise _iban_error(
            "The IBAN check digits do not match (ISO 13616 mod-97); look for a mistyped character.",
            "checksum_mismatch",
        )
    if bank_by_code(bank_code) is None:
        raise _iban_error(
            f"Bank code '{bank_code}' is not a known Pakistani IBAN bank code.", "unknown_bank"
        )
    return value


@dataclass(frozen=True, slots=True, repr=False)
class Iban:
    """A validated Pakistani IBAN, stored canonical: 24 characters, uppercase, no spaces.

    ``Iban(raw)`` accepts the same input as :func:`parse_iban` and normalises it.
    """

    value: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _normalize_iban(self.value))

    @property
    def check_digits(self) -> str:
        return self.value[2:4]

    @property
    def bank_code(self) -> str:
        return self.value[4:8]

    @property
    def account_number(self) -> str:
        """The 16-digit account part (IBAN characters 9-24)."""
        return self.value[8:]

    @property
    def bank(self) -> Bank:
        bank = bank_by_code(self.bank_code)
        if bank is None:  # pragma: no cover - construction already rejected it
            raise _iban_error("Unknown bank code.", "unknown_bank")
        return bank

    @property
    def formatted(self) -> str:
        """Print form: groups of four separated by spaces (``PK36 SCBL 0000 …``)."""
        return " ".join(self.value[i : i + 4] for i in range(0, PK_IBAN_LENGTH, 4))

    @property
    def last4(self) -> str:
        return self.value[-4:]

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"Iban('{self.value[:8]}…{self.last4}')"


def parse_iban(raw: str) -> Iban:
    """Parse a Pakistani IBAN: spaces are ignored, letters are uppercased.

    Raises :class:`InvalidInput` (``code="invalid_iban"``) with ``reason`` one of
    ``empty``, ``bad_characters``, ``wrong_country``, ``wrong_length``, ``bad_format``,
    ``checksum_mismatch``, ``unknown_bank``.
    """
    return Iban(raw)


def make_iban(bank_code: str, account16: str) -> Iban:
    """Build the valid IBAN for a known bank code and a 16-digit account number."""
    check = iban_check_digits(bank_code, account16)
    return Iban(f"PK{check}{bank_code}{account16}")


# --------------------------------------------------------------------------------------
# CNIC
# --------------------------------------------------------------------------------------

CNIC_LENGTH = 13


def _cnic_error(message: str, reason: str) -> InvalidInput:
    return InvalidInput(message, code="invalid_cnic", reason=reason)


def _normalize_cnic(raw: object) -> str:
    if not isinstance(raw, str):
        raise _cnic_error("A CNIC must be given as a string.", "bad_characters")
    text = raw.strip()
    if not text:
        raise _cnic_error("The CNIC is empty.", "empty")
    if not set(text) <= _DIGITS | {"-"}:
        raise _cnic_error(
            "A CNIC may contain only digits 0-9 and dashes (XXXXX-XXXXXXX-X).", "bad_characters"
        )
    digits = text.replace("-", "")
    if len(digits) != CNIC_LENGTH:
        raise _cnic_error(
            f"A CNIC has exactly {CNIC_LENGTH} digits; got {len(digits)}.", "wrong_length"
        )
    if "-" in text and (len(text) != 15 or text[5] != "-" or text[13] != "-"):
        raise _cnic_error(
            "Dashes in a CNIC go after the 5th and 12th digits (XXXXX-XXXXXXX-X).", "bad_format"
        )
    if digits[0] == "0":
        raise _cnic_error("A CNIC cannot start with 0.", "bad_format")
    return digits


@dataclass(frozen=True, slots=True, repr=False)
class Cnic:
    """A Pakistani Computerised National Identity Card number, stored as 13 digits.

    ``Cnic(raw)`` accepts the same input as :func:`parse_cnic` and normalises it.
    """

    value: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _normalize_cnic(self.value))

    @property
    def formatted(self) -> str:
        """The printed form ``XXXXX-XXXXXXX-X``."""
        v = self.value
        return f"{v[:5]}-{v[5:12]}-{v[12]}"

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"Cnic('*****-*******-{self.value[-1]}')"


def parse_cnic(raw: str) -> Cnic:
    """Parse a CNIC given as ``XXXXX-XXXXXXX-X`` or 13 digits (surrounding whitespace ok).

    Raises :class:`InvalidInput` (``code="invalid_cnic"``) with ``reason`` one of
    ``empty``, ``bad_characters``, ``wrong_length``, ``bad_format``.
    """
    return Cnic(raw)


# --------------------------------------------------------------------------------------
# Raast ID (Pakistani mobile number)
# --------------------------------------------------------------------------------------

PK_COUNTRY_CODE = "92"
PK_MOBILE_NATIONAL_LENGTH = 10  # 3XX XXXXXXX
_PHONE_SEPARATORS = frozenset(" \t-().")


def _raast_error(message: str, reason: str) -> InvalidInput:
    return InvalidInput(message, code="invalid_raast_id", reason=reason)


def _normalize_raast_id(raw: object) -> str:
    if not isinstance(raw, str):
        raise _raast_error("A mobile number must be given as a string.", "bad_characters")
    text = raw.strip()
    if not text:
        raise _raast_error("The mobile number is empty.", "empty")
    plus = text.startswith("+")
    body = "".join(c for c in (text[1:] if plus else text) if c not in _PHONE_SEPARATORS)
    if not body or not set(body) <= _DIGITS:
        raise _raast_error(
            "A mobile number may contain only digits, a leading '+', spaces and dashes.",
            "bad_characters",
        )

    if plus or body.startswith("00"):
        international = body if plus else body[2:]
        if not international.startswith(PK_COUNTRY_CODE):
            raise _raast_error(
                "Only Pakistani mobile numbers (+92) can be Raast IDs.", "wrong_country"
            )
        national = international[len(PK_COUNTRY_CODE) :]
        # "+92 0300 ..." (trunk 0 kept after the country code) is a common slip; drop it.
        if national.startswith("0"):
            national = national[1:]
    elif body.startswith(PK_COUNTRY_CODE):
        national = body[len(PK_COUNTRY_CODE) :]  # "923001234567": country code without '+'
    elif body.startswith("0"):
        national = body[1:]  # trunk prefix: "03001234567"
    else:
        national = body  # bare national number: "3001234567"

    if not national:
        raise _raast_error("The mobile number has no subscriber digits.", "wrong_length")
    if national[0] != "3":
        raise _raast_error(
            "Not a Pakistani mobile number: after +92 a mobile number starts with 3 "
            "(landlines cannot be Raast IDs).",
            "not_mobile",
        )
    if len(national) != PK_MOBILE_NATIONAL_LENGTH:
        raise _raast_error(
            "A Pakistani mobile number has 10 digits after +92 (3XX XXXXXXX); "
            f"got {len(national)}.",
            "wrong_length",
        )
    return f"+{PK_COUNTRY_CODE}{national}"


@dataclass(frozen=True, slots=True, repr=False)
class RaastId:
    """A Raast ID: a Pakistani mobile number stored in E.164 form, ``+923XXXXXXXXX``.

    ``RaastId(raw)`` accepts the same input as :func:`parse_raast_id` and normalises it.
    """

    value: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _normalize_raast_id(self.value))

    @property
    def national(self) -> str:
        """The local dialling form ``03XXXXXXXXX``."""
        return "0" + self.value[3:]

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"RaastId('{self.value[:6]}*****{self.value[-2:]}')"


def parse_raast_id(raw: str) -> RaastId:
    """Parse a Pakistani mobile number into its E.164 Raast ID.

    Accepts ``+923001234567``, ``923001234567``, ``00923001234567``, ``03001234567``,
    ``0300-1234567``, ``0300 1234567`` and ``3001234567``. Raises :class:`InvalidInput`
    (``code="invalid_raast_id"``) with ``reason`` one of ``empty``, ``bad_characters``,
    ``wrong_length``, ``not_mobile``, ``wrong_country``.
    """
    return RaastId(raw)


parse_mobile = parse_raast_id

"""Tests for Pakistani identifiers: IBAN, CNIC, Raast ID, and the shipped bank table."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TypeVar

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from amanat.kernel.errors import InvalidInput
from amanat.kernel.pakistan import (
    BANK_KINDS,
    Bank,
    Cnic,
    Iban,
    RaastId,
    bank_by_code,
    banks,
    iban_check_digits,
    make_iban,
    parse_cnic,
    parse_iban,
    parse_mobile,
    parse_raast_id,
)

CANONICAL_IBAN = "PK36SCBL0000001123456702"
BANK_CODES = [bank.code for bank in banks()]

digits16 = st.text(alphabet="0123456789", min_size=16, max_size=16)
known_codes = st.sampled_from(BANK_CODES)

T = TypeVar("T")


def _parse_or_error(parse: Callable[[str], T], raw: str) -> T | InvalidInput:
    """Run a parser; return its error instead of raising (any other exception propagates)."""
    try:
        return parse(raw)
    except InvalidInput as exc:
        return exc


# --------------------------------------------------------------------------------------
# Bank table
# --------------------------------------------------------------------------------------


class TestBanks:
    def test_table_loads_sorted_and_unique(self) -> None:
        table = banks()
        assert len(table) >= 30
        codes = [bank.code for bank in table]
        assert codes == sorted(codes)
        assert len(set(codes)) == len(codes)

    def test_is_cached(self) -> None:
        assert banks() is banks()

    @pytest.mark.parametrize("bank", banks(), ids=lambda bank: bank.code)
    def test_rows_are_well_formed(self, bank: Bank) -> None:
        assert len(bank.code) == 4
        assert bank.code.isascii()
        assert bank.code.isalpha()
        assert bank.code.isupper()
        assert bank.name.strip() == bank.name != ""
        assert bank.kind in BANK_KINDS
        assert bank.imd is None or (len(bank.imd) == 6 and bank.imd.isdigit())

    @pytest.mark.parametrize(
        ("code", "fragment", "kind"),
        [
            ("SCBL", "Standard Chartered", "commercial"),
            ("HABB", "Habib Bank", "commercial"),
            ("MUCB", "MCB Bank", "commercial"),
            ("UNIL", "United Bank", "commercial"),
            ("ABPA", "Allied Bank", "commercial"),
            ("ALFH", "Alfalah", "commercial"),
            ("BAHL", "Bank AL Habib", "commercial"),
            ("MEZN", "Meezan", "islamic"),
            ("FAYS", "Faysal", "islamic"),
            ("NBPA", "National Bank of Pakistan", "public"),
            ("ASCM", "Askari", "commercial"),
            ("JSBL", "JS Bank", "commercial"),
            ("SONE", "Soneri", "commercial"),
            ("SUMB", "Summit", "commercial"),
            ("BPUN", "Bank of Punjab", "public"),
            ("KHYB", "Bank of Khyber", "public"),
            ("SIND", "Sindh Bank", "public"),
            ("DUIB", "Dubai Islamic", "islamic"),
            ("BKIP", "BankIslami", "islamic"),
            ("MPBL", "Habib Metropolitan", "commercial"),
            ("AIIN", "Al Baraka", "islamic"),
            ("TMFB", "Telenor Microfinance", "microfinance"),
            ("JCMA", "Mobilink Microfinance", "microfinance"),
        ],
    )
    def test_known_banks(self, code: str, fragment: str, kind: str) -> None:
        bank = bank_by_code(code)
        assert bank is not None
        assert fragment in bank.name
        assert bank.kind == kind

    def test_lookup_is_case_insensitive_and_unknown_is_none(self) -> None:
        assert bank_by_code("scbl") == bank_by_code("SCBL")
        assert bank_by_code(" scbl ") == bank_by_code("SCBL")
        assert bank_by_code("ZZZZ") is None
        assert bank_by_code("") is None


# --------------------------------------------------------------------------------------
# IBAN
# --------------------------------------------------------------------------------------


class TestIban:
    def test_canonical_example(self) -> None:
        iban = parse_iban(CANONICAL_IBAN)
        assert iban.value == CANONICAL_IBAN
        assert str(iban) == CANONICAL_IBAN
        assert iban.check_digits == "36"
        assert iban.bank_code == "SCBL"
        assert iban.account_number == "0000001123456702"
        assert iban.bank.code == "SCBL"
        assert "Standard Chartered" in iban.bank.name
        assert iban.formatted == "PK36 SCBL 0000 0011 2345 6702"
        assert iban.last4 == "6702"

    @pytest.mark.parametrize(
        "raw",
        [
            "PK36 SCBL 0000 0011 2345 6702",
            "pk36scbl0000001123456702",
            "  pk36 scbl 0000 0011 2345 6702\n",
            "PK36\tSCBL0000001123456702",
        ],
    )
    def test_spaces_and_case_are_normalised(self, raw: str) -> None:
        assert parse_iban(raw) == parse_iban(CANONICAL_IBAN)

    def test_constructor_is_the_parser(self) -> None:
        assert Iban("pk36 scbl 0000 0011 2345 6702") == parse_iban(CANONICAL_IBAN)
        assert len({Iban(CANONICAL_IBAN), parse_iban(CANONICAL_IBAN.lower())}) == 1
        with pytest.raises(InvalidInput):
            Iban("PK37SCBL0000001123456702")

    def test_is_frozen(self) -> None:
        iban = parse_iban(CANONICAL_IBAN)
        with pytest.raises(dataclasses.FrozenInstanceError):
            iban.value = "PK00"  # type: ignore[misc]

    def test_check_digits_helper(self) -> None:
        assert iban_check_digits("SCBL", "0000001123456702") == "36"

    @pytest.mark.parametrize(
        ("bank_code", "account"),
        [
            ("SCB", "0000001123456702"),
            ("scbl", "0000001123456702"),
            ("SCB1", "0000001123456702"),
            ("SCBL", "000000112345670"),
            ("SCBL", "00000011234567020"),
            ("SCBL", "000000112345670A"),
        ],
    )
    def test_check_digits_helper_rejects_bad_parts(self, bank_code: str, account: str) -> None:
        with pytest.raises(InvalidInput) as exc:
            iban_check_digits(bank_code, account)
        assert exc.value.code == "invalid_iban"
        assert exc.value.reason == "bad_format"

    def test_make_iban(self) -> None:
        assert make_iban("SCBL", "0000001123456702") == parse_iban(CANONICAL_IBAN)

    @pytest.mark.parametrize("code", BANK_CODES)
    def test_every_bank_in_the_table_can_be_used(self, code: str) -> None:
        iban = make_iban(code, "1234567890123456")
        assert iban.bank.code == code

    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            ("", "empty"),
            ("   \t ", "empty"),
            ("PK36-SCBL-0000-0011-2345-6702", "bad_characters"),
            ("PK36SCBL000000112345670!", "bad_characters"),
            ("PK36SCBL00000011234567\u06602", "bad_characters"),  # Arabic-Indic digit
            ("PK36SCBL00000011234567\uff102", "bad_characters"),  # fullwidth digit
            ("PK36\u017fCBL0000001123456702", "bad_characters"),  # long s: upper() is "S"
            ("GB82WEST12345698765432", "wrong_country"),
            ("DE89370400440532013000", "wrong_country"),
            ("XK36SCBL0000001123456702", "wrong_country"),
            ("P", "wrong_length"),
            ("PK", "wrong_length"),
            ("PK36SCBL000000112345670", "wrong_length"),
            ("PK36SCBL00000011234567021", "wrong_length"),
            ("PKA6SCBL0000001123456702", "bad_format"),
            ("PK36SCB10000001123456702", "bad_format"),
            ("PK36SCBL00000011234567A2", "bad_format"),
            ("PK37SCBL0000001123456702", "checksum_mismatch"),
            ("PK36SCBL0000001123456703", "checksum_mismatch"),
            ("PK36SCBL0000001123456720", "checksum_mismatch"),  # transposition
        ],
    )
    def test_rejections(self, raw: str, reason: str) -> None:
        with pytest.raises(InvalidInput) as exc:
            parse_iban(raw)
        assert exc.value.code == "invalid_iban"
        assert exc.value.reason == reason

    def test_unknown_bank(self) -> None:
        account = "0000001123456702"
        raw = f"PK{iban_check_digits('ZZZZ', account)}ZZZZ{account}"
        with pytest.raises(InvalidInput) as exc:
            parse_iban(raw)
        assert exc.value.code == "invalid_iban"
        assert exc.value.reason == "unknown_bank"
        with pytest.raises(InvalidInput) as exc:
            make_iban("ZZZZ", account)
        assert exc.value.reason == "unknown_bank"

    def test_out_of_range_check_digits_are_rejected(self) -> None:
        # 99 = 02 (mod 97), 00 = 97, 01 = 98: they satisfy mod-97 but ISO 13616 never
        # issues them, so a 99/00/01 is always a typo of the real check digits.
        aliases = {"02": "99", "97": "00", "98": "01"}
        for code, alias in aliases.items():
            account = next(
                f"{n:016d}" for n in range(10_000) if iban_check_digits("SCBL", f"{n:016d}") == code
            )
            raw = f"PK{alias}SCBL{account}"
            with pytest.raises(InvalidInput) as exc:
                parse_iban(raw)
            assert exc.value.reason == "checksum_mismatch"

    def test_error_messages_do_not_echo_the_account(self) -> None:
        with pytest.raises(InvalidInput) as exc:
            parse_iban("PK37SCBL0000001123456702")
        assert "1123456702" not in str(exc.value)

    def test_repr_is_masked(self) -> None:
        iban = parse_iban(CANONICAL_IBAN)
        assert repr(iban) == "Iban('PK36SCBL…6702')"
        assert CANONICAL_IBAN not in repr(iban)
        assert iban.account_number not in repr(iban)
        assert CANONICAL_IBAN not in repr([iban, {"k": iban}])

    @given(code=known_codes, account=digits16)
    def test_make_iban_round_trips(self, code: str, account: str) -> None:
        iban = make_iban(code, account)
        assert iban.bank_code == code
        assert iban.account_number == account
        assert parse_iban(str(iban)) == iban
        assert parse_iban(iban.formatted) == iban
        assert parse_iban(iban.formatted.lower()) == iban
        assert 2 <= int(iban.check_digits) <= 98

    @given(
        code=known_codes,
        account=digits16,
        position=st.sampled_from([2, 3, *range(8, 24)]),
        delta=st.integers(min_value=1, max_value=9),
    )
    @example(code="SCBL", account="0000001123456702", position=23, delta=1)
    def test_any_single_digit_substitution_is_detected(
        self, code: str, account: str, position: int, delta: int
    ) -> None:
        valid = str(make_iban(code, account))
        mutated_digit = str((int(valid[position]) + delta) % 10)
        mutated = valid[:position] + mutated_digit + valid[position + 1 :]
        assert mutated != valid
        with pytest.raises(InvalidInput) as exc:
            parse_iban(mutated)
        assert exc.value.reason == "checksum_mismatch"

    @given(st.text(max_size=40))
    def test_arbitrary_text_parses_or_raises_invalid_input(self, raw: str) -> None:
        result = _parse_or_error(parse_iban, raw)
        if isinstance(result, InvalidInput):
            assert result.code == "invalid_iban"
        else:
            assert len(result.value) == 24


# --------------------------------------------------------------------------------------
# CNIC
# --------------------------------------------------------------------------------------


class TestCnic:
    @pytest.mark.parametrize(
        "raw",
        ["35202-1234567-1", "3520212345671", "  35202-1234567-1\n", "\t3520212345671 "],
    )
    def test_accepted_forms(self, raw: str) -> None:
        cnic = parse_cnic(raw)
        assert cnic.value == "3520212345671"
        assert str(cnic) == "3520212345671"
        assert cnic.formatted == "35202-1234567-1"
        assert cnic == Cnic("35202-1234567-1")

    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            ("", "empty"),
            ("   ", "empty"),
            ("35202 1234567 1", "bad_characters"),
            ("35202_1234567_1", "bad_characters"),
            ("3520A-1234567-1", "bad_characters"),
            ("35202-1234567-\u0661", "bad_characters"),  # Arabic-Indic digit one
            ("35202-1234567", "wrong_length"),
            ("352021234567", "wrong_length"),
            ("35202-1234567-12", "wrong_length"),
            ("35202123456712", "wrong_length"),
            ("-", "wrong_length"),
            ("3520-21234567-1", "bad_format"),
            ("352021234567-1", "bad_format"),
            ("35202-12345671", "bad_format"),
            ("35202-123456-71", "bad_format"),
            ("-35202-1234567-1", "bad_format"),
            ("35202-1234567-1-", "bad_format"),
            ("0520212345671", "bad_format"),
            ("05202-1234567-1", "bad_format"),
        ],
    )
    def test_rejections(self, raw: str, reason: str) -> None:
        with pytest.raises(InvalidInput) as exc:
            parse_cnic(raw)
        assert exc.value.code == "invalid_cnic"
        assert exc.value.reason == reason

    def test_error_messages_do_not_echo_the_value(self) -> None:
        with pytest.raises(InvalidInput) as exc:
            parse_cnic("35202-1234567-12")
        assert "1234567" not in str(exc.value)

    def test_repr_is_masked(self) -> None:
        cnic = parse_cnic("35202-1234567-3")
        assert repr(cnic) == "Cnic('*****-*******-3')"

    @given(st.text(alphabet="0123456789", min_size=13, max_size=13))
    def test_dashed_and_plain_forms_agree(self, digits: str) -> None:
        assume(digits[0] != "0")
        dashed = f"{digits[:5]}-{digits[5:12]}-{digits[12]}"
        cnic = parse_cnic(digits)
        assert parse_cnic(dashed) == cnic
        assert parse_cnic(f"  {dashed} ") == cnic
        assert cnic.formatted == dashed
        assert digits not in repr(cnic)
        assert dashed not in repr(cnic)

    @given(st.text(max_size=20))
    def test_arbitrary_text_parses_or_raises_invalid_input(self, raw: str) -> None:
        result = _parse_or_error(parse_cnic, raw)
        if isinstance(result, InvalidInput):
            assert result.code == "invalid_cnic"
        else:
            assert len(result.value) == 13


# --------------------------------------------------------------------------------------
# Raast ID / mobile
# --------------------------------------------------------------------------------------


class TestRaastId:
    @pytest.mark.parametrize(
        "raw",
        [
            "+923001234567",
            "923001234567",
            "03001234567",
            "0300-1234567",
            "0300 1234567",
            "00923001234567",
            "+92 300 1234567",
            "+92-300-1234567",
            "+92 (300) 1234567",
            "0092 300 1234567",
            "3001234567",
            "+92 0300 1234567",
            "  0300 1234567 ",
        ],
    )
    def test_accepted_forms_normalise_to_e164(self, raw: str) -> None:
        raast = parse_raast_id(raw)
        assert raast.value == "+923001234567"
        assert str(raast) == "+923001234567"
        assert raast.national == "03001234567"
        assert raast == RaastId(raw)

    def test_parse_mobile_is_an_alias(self) -> None:
        assert parse_mobile is parse_raast_id
        assert parse_mobile("0300-1234567") == parse_raast_id("+923001234567")

    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            ("", "empty"),
            ("  ", "empty"),
            ("+", "bad_characters"),
            ("0300-123456a", "bad_characters"),
            ("0300/1234567", "bad_characters"),
            ("+92+3001234567", "bad_characters"),
            ("92 300 1234567+", "bad_characters"),
            ("0300\u06601234567", "bad_characters"),  # Arabic-Indic digit
            ("0300123456", "wrong_length"),
            ("030012345678", "wrong_length"),
            ("+92300123", "wrong_length"),
            ("+92", "wrong_length"),
            ("0", "wrong_length"),
            ("+923001234567890", "wrong_length"),
            ("+924235761234", "not_mobile"),
            ("04235761234", "not_mobile"),
            ("042-35761234", "not_mobile"),
            ("+92 51 1234567", "not_mobile"),
            ("0092 21 34567890", "not_mobile"),
            ("+14155552671", "wrong_country"),
            ("00441234567890", "wrong_country"),
            ("+91 98765 43210", "wrong_country"),
        ],
    )
    def test_rejections(self, raw: str, reason: str) -> None:
        with pytest.raises(InvalidInput) as exc:
            parse_raast_id(raw)
        assert exc.value.code == "invalid_raast_id"
        assert exc.value.reason == reason

    def test_repr_is_masked(self) -> None:
        raast = parse_raast_id("03001234567")
        assert repr(raast) == "RaastId('+92300*****67')"

    @given(subscriber=st.text(alphabet="0123456789", min_size=9, max_size=9))
    def test_all_accepted_forms_agree(self, subscriber: str) -> None:
        national = "3" + subscriber
        e164 = "+92" + national
        forms = [
            e164,
            "92" + national,
            "0092" + national,
            "0" + national,
            f"0{national[:3]}-{national[3:]}",
            f"0{national[:3]} {national[3:]}",
            national,
        ]
        parsed = {parse_raast_id(form) for form in forms}
        assert parsed == {RaastId(e164)}
        raast = parsed.pop()
        assert raast.value == e164
        assert raast.national == "0" + national
        assert e164 not in repr(raast)
        assert national not in repr(raast)

    @given(st.text(max_size=24))
    def test_arbitrary_text_parses_or_raises_invalid_input(self, raw: str) -> None:
        result = _parse_or_error(parse_raast_id, raw)
        if isinstance(result, InvalidInput):
            assert result.code == "invalid_raast_id"
        else:
            assert result.value.startswith("+923")
            assert len(result.value) == 13


# --------------------------------------------------------------------------------------
# repr never leaks
# --------------------------------------------------------------------------------------


@given(code=known_codes, account=digits16)
def test_iban_repr_never_contains_the_full_value(code: str, account: str) -> None:
    iban = make_iban(code, account)
    shown = repr(iban)
    assert iban.value not in shown
    assert iban.formatted not in shown
    assert iban.account_number not in shown
    assert shown.startswith("Iban(")
    assert iban.last4 in shown

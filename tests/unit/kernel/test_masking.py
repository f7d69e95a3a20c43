"""The single masking policy: each masker, free-text redaction and mapping walks."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from amanat.kernel import masking
from amanat.kernel.masking import (
    KEYED_MASKERS,
    REDACTED,
    SENSITIVE_KEYS,
    is_sensitive_key,
    mask_cnic,
    mask_iban,
    mask_mapping,
    mask_pan,
    mask_phone,
    mask_secret,
    mask_value,
    masker_for_key,
    redact_text,
)

IBAN = "PK36SCBL0000001123456702"
IBAN_MASKED = "PK**SCBL************6702"
CNIC = "35202-1234567-3"
CNIC_MASKED = "*****-*******-3"
PHONE = "+923001234567"
PHONE_MASKED = "+92300*****67"
PAN = "4111111111111111"
PAN_MASKED = "411111******1111"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkFsaSJ9"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


def luhn_complete(body: str) -> str:
    """``body`` plus the Luhn check digit that makes it valid."""
    total = 0
    for position, char in enumerate(reversed(body)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return body + str((10 - total % 10) % 10)


# --------------------------------------------------------------------------------------
# Single-value maskers
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        (IBAN, IBAN_MASKED),
        ("PK36 SCBL 0000 0011 2345 6702", IBAN_MASKED),
        ("pk36scbl0000001123456702", IBAN_MASKED),
        ("  PK36-SCBL-0000-0011-2345-6702 ", IBAN_MASKED),
        ("GB29NWBK60161331926819", "GB**NWBK**********6819"),
        ("not an iban", REDACTED),
        ("PK36", REDACTED),
        ("", REDACTED),
    ],
)
def test_mask_iban(raw: str, masked: str) -> None:
    assert mask_iban(raw) == masked


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        (CNIC, CNIC_MASKED),
        ("3520212345673", "************3"),
        (" 35202-1234567-3 ", CNIC_MASKED),
        ("35202-1234567", REDACTED),
        ("abc", REDACTED),
    ],
)
def test_mask_cnic(raw: str, masked: str) -> None:
    assert mask_cnic(raw) == masked


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        (PHONE, PHONE_MASKED),
        ("03001234567", "0300*****67"),
        ("0300-1234567", "0300-*****67"),
        ("0300 1234567", "0300 *****67"),
        ("923001234567", "92300*****67"),
        ("00923001234567", "0092300*****67"),
        ("+92 300 1234567", "+92 300 *****67"),
        ("+92 0300 1234567", "+92 0300 *****67"),
        ("3001234567", "300*****67"),
        ("+441632960961", "+**********61"),
        ("12345", REDACTED),
        ("call me", REDACTED),
    ],
)
def test_mask_phone(raw: str, masked: str) -> None:
    assert mask_phone(raw) == masked


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        (PAN, PAN_MASKED),
        ("4111 1111 1111 1111", PAN_MASKED),
        ("4111-1111-1111-1111", PAN_MASKED),
        ("378282246310005", "378282*****0005"),
        ("4111111111111112", "411111******1112"),  # not Luhn-valid, still a card field
        ("4111", REDACTED),
        ("4111111111111111111111", REDACTED),
        ("card 4111111111111111", REDACTED),
    ],
)
def test_mask_pan(raw: str, masked: str) -> None:
    assert mask_pan(raw) == masked


@pytest.mark.parametrize("secret", ["", "x", "hunter2", "a" * 200])
def test_mask_secret_leaks_nothing_not_even_length(secret: str) -> None:
    assert mask_secret(secret) == REDACTED


# --------------------------------------------------------------------------------------
# Free text
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "clear", "masked"),
    [
        (f"transfer to {IBAN} today", IBAN, IBAN_MASKED),
        ("transfer to PK36 SCBL 0000 0011 2345 6702.", "0011 2345", IBAN_MASKED),
        ("lower-case pk36scbl0000001123456702!", "0000001123456702", IBAN_MASKED),
        (f"CNIC {CNIC} on file", CNIC, CNIC_MASKED),
        ("CNIC 3520212345673 on file", "3520212345673", "************3"),
        (f"call {PHONE} now", PHONE, PHONE_MASKED),
        ("call 923001234567 now", "923001234567", "92300*****67"),
        ("call 03001234567 now", "03001234567", "0300*****67"),
        ("call 0300-1234567 now", "0300-1234567", "0300-*****67"),
        ("call 0300 1234567 now", "0300 1234567", "0300 *****67"),
        ("call 00923001234567 now", "00923001234567", "0092300*****67"),
        ("call +92 300 123 4567 now", "123 4567", "+92 300 *** **67"),
        (f"card {PAN} declined", PAN, PAN_MASKED),
        ("card 4111 1111 1111 1111 declined", "4111 1111 1111 1111", PAN_MASKED),
        ("card 4111-1111-1111-1111 declined", "1111-1111-1111", PAN_MASKED),
        ("amex 378282246310005 ok", "378282246310005", "378282*****0005"),
        ("Authorization: Bearer abc123DEF456ghi789", "abc123DEF456ghi789", "Authorization: "),
        ("sent Bearer abc123DEF456ghi789 upstream", "abc123DEF456ghi789", "Bearer [redacted]"),
        (f"id_token {JWT} expired", "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", REDACTED),
        ("Basic dXNlcjpwYXNzd29yZA== rejected", "dXNlcjpwYXNzd29yZA", "Basic [redacted]"),
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "MfKQ9r8GKYqrTwjUPD8I", "whsec_[redacted]"),
        ("key sk_live_4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWDarjtT1zdp7dc", "sk_[redacted]"),
        ("key cs_test_a1B2c3D4e5F6g7H8i9J0", "a1B2c3D4e5F6g7H8i9J0", "cs_[redacted]"),
        ("POST grant_type=password&password=hunter2&x=1", "hunter2", "password=[redacted]&x=1"),
        ("?client_secret=s3cr3t-value&scope=a", "s3cr3t-value", "client_secret=[redacted]&"),
        ("GET /cb?token=t0ken&state=xyz", "t0ken", "state=xyz"),
        ("GET /cb?code=SplxlOBeZQQYbYS6WxSbIA&state=xyz", "SplxlOBeZQQ", "code=[redacted]"),
        ("secret=abc def", "abc", "secret=[redacted] def"),
        (
            'body {"refresh_token": "rt-123", "pin": 4321}',
            "rt-123",
            '"refresh_token": "[redacted]"',
        ),
        ("body {'totp_secret': 'JBSWY3DPEHPK3PXP'}", "JBSWY3DPEHPK3PXP", "'totp_secret': '"),
        ("dsn postgresql://amanat:pa55word@db:5432/x", "pa55word", "amanat:[redacted]@db"),
        ("Cookie: session=abc123; theme=dark", "abc123", "Cookie: [redacted]"),
    ],
)
def test_redact_text_masks_each_kind(text: str, clear: str, masked: str) -> None:
    redacted = redact_text(text)
    assert clear not in redacted
    assert masked in redacted


@pytest.mark.parametrize(
    "text",
    [
        "http_request method=GET path=/v1/banks status=200 duration_ms=12.5",
        "error code=invalid_iban reason=checksum_mismatch",
        '{"code": "invalid_iban", "status": 422}',
        "status code: 404",
        "Bearer authentication is required",
        "Basic authentication is disabled",
        "token_type=Bearer expires_in=3600",
        "at 2024-11-24T14:21:00.123456Z request_id=req_01JD8X3QZ9K4AB",
        "uuid 123e4567-e89b-12d3-a456-426614174000 amount 150000 PKR",
        "the task_abcdefghijklmnopqrstu ran",
        "",
    ],
)
def test_redact_text_leaves_ordinary_text_alone(text: str) -> None:
    assert redact_text(text) == text


def test_iban_is_not_half_eaten_by_the_card_or_cnic_rules() -> None:
    # The 16-digit account part must not be treated as a card, nor its 13-digit tail as a CNIC.
    assert redact_text(f"to {IBAN}") == f"to {IBAN_MASKED}"


def test_luhn_valid_cnic_gets_the_cnic_treatment_not_the_card_one() -> None:
    cnic = luhn_complete("352021234567")
    assert redact_text(f"cnic {cnic}") == "cnic ************" + cnic[-1]


def test_phone_with_trunk_after_country_code_is_a_phone_not_a_cnic() -> None:
    assert redact_text("call 9203001234567") == "call 920300*****67"


def test_card_preceded_by_other_digit_groups_is_still_found() -> None:
    redacted = redact_text("ref 12 4111 1111 1111 1111")
    assert "4111 1111 1111 1111" not in redacted
    assert "1111 1111 1111" not in redacted


def test_non_luhn_digit_runs_are_not_cards() -> None:
    assert redact_text("order 4111111111111112") == "order 4111111111111112"


# --------------------------------------------------------------------------------------
# Keys and mappings
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "Authorization",
        "PROXY-AUTHORIZATION",
        "cookie",
        "Set-Cookie",
        "password",
        "client_secret",
        "x-api-key",
        "X_API_KEY",
        "access_token",
        "code_verifier",
        "otp",
        "pin",
        "cvv",
        "db_password",
        "x-auth-token",
        "stripe_webhook_secret",
        "signing_key_passphrase",
    ],
)
def test_sensitive_keys(key: str) -> None:
    assert is_sensitive_key(key)
    assert mask_value(key, "anything at all") == REDACTED
    assert mask_value(key, 1234) == REDACTED
    assert mask_value(key, {"nested": "dict"}) == REDACTED
    assert mask_value(key, None) is None


@pytest.mark.parametrize("key", ["code", "token_type", "status", "iban", "event", "password_hint"])
def test_not_sensitive_keys(key: str) -> None:
    assert not is_sensitive_key(key)


def test_sensitive_keys_are_lower_case() -> None:
    assert all(key == key.lower() for key in SENSITIVE_KEYS)
    assert all(key == key.lower() for key in KEYED_MASKERS)


@pytest.mark.parametrize(
    ("key", "value", "masked"),
    [
        ("iban", IBAN, IBAN_MASKED),
        ("debtor_iban", IBAN, IBAN_MASKED),
        ("Creditor-IBAN", IBAN, IBAN_MASKED),
        ("beneficiary_iban", IBAN, IBAN_MASKED),
        ("cnic", CNIC, CNIC_MASKED),
        ("cnic", 3520212345673, "************3"),
        ("phone", PHONE, PHONE_MASKED),
        ("mobile", "03001234567", "0300*****67"),
        ("msisdn", 923001234567, "92300*****67"),
        ("raast_id", PHONE, PHONE_MASKED),
        ("pan", PAN, PAN_MASKED),
        ("card_number", 4111111111111111, PAN_MASKED),
        ("iban", [IBAN, IBAN], [IBAN_MASKED, IBAN_MASKED]),
        ("iban", None, None),
        ("iban", "n/a", REDACTED),
    ],
)
def test_keyed_maskers(key: str, value: object, masked: object) -> None:
    assert masker_for_key(key) is not None
    assert mask_value(key, value) == masked


def test_keyed_masker_uses_str_of_value_objects() -> None:
    class Iban:
        def __str__(self) -> str:
            return IBAN

    assert mask_value("iban", Iban()) == IBAN_MASKED


def test_code_key_keeps_error_codes_but_redacts_oauth_codes() -> None:
    assert mask_value("code", "invalid_iban") == "invalid_iban"
    assert mask_value("code", "404") == "404"
    assert mask_value("code", 422) == 422
    assert mask_value("code", "SplxlOBeZQQYbYS6WxSbIA") == REDACTED
    assert mask_value("code", "123456") == REDACTED


def test_mask_mapping_walks_nested_structures() -> None:
    data = {
        "Authorization": f"Bearer {JWT}",
        "amount": 150000,
        "ok": True,
        "ratio": 0.5,
        "parties": [
            {"debtor_iban": IBAN, "cnic": CNIC, "name": "Ali"},
            ({"msisdn": PHONE},),
        ],
        "note": f"card {PAN} for {PHONE}",
        "meta": {"client": {"client_secret": "s3cr3t", "tags": {"a", "b"}}},
        7: "seven",
    }
    masked = mask_mapping(data)
    assert masked == {
        "Authorization": REDACTED,
        "amount": 150000,
        "ok": True,
        "ratio": 0.5,
        "parties": [
            {"debtor_iban": IBAN_MASKED, "cnic": CNIC_MASKED, "name": "Ali"},
            ({"msisdn": PHONE_MASKED},),
        ],
        "note": f"card {PAN_MASKED} for {PHONE_MASKED}",
        "meta": {"client": {"client_secret": REDACTED, "tags": {"a", "b"}}},
        7: "seven",
    }
    assert data["note"] == f"card {PAN} for {PHONE}", "the input is not modified"


def test_mask_value_without_key_masks_strings_only() -> None:
    assert mask_value(None, f"iban {IBAN}") == f"iban {IBAN_MASKED}"
    assert mask_value(None, 3520212345673) == 3520212345673
    assert mask_value(None, b"raw") == b"raw"


def test_self_referential_structures_terminate() -> None:
    loop: dict[str, object] = {}
    loop["self"] = loop
    masked = mask_mapping(loop)
    depth = 0
    node: object = masked
    while isinstance(node, dict):
        node = node["self"]
        depth += 1
    assert node == "[truncated]"
    assert depth > 10


# --------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------

_SURROUNDING = st.text(
    alphabet=string.ascii_letters + " \t\n.,;:!?()[]{}<>'\"/-_+*#@&%|~^`$",
    max_size=40,
)
_DIGIT = st.sampled_from(string.digits)
_UPPER = st.sampled_from(string.ascii_uppercase)


@st.composite
def pk_ibans(draw: st.DrawFn) -> str:
    check = "".join(draw(st.lists(_DIGIT, min_size=2, max_size=2)))
    bank = "".join(draw(st.lists(_UPPER, min_size=4, max_size=4)))
    account = "".join(draw(st.lists(_DIGIT, min_size=16, max_size=16)))
    return f"PK{check}{bank}{account}"


@st.composite
def cnics(draw: st.DrawFn) -> str:
    first = draw(st.sampled_from("1234567"))
    rest = "".join(draw(st.lists(_DIGIT, min_size=12, max_size=12)))
    return first + rest


@st.composite
def pk_mobiles(draw: st.DrawFn) -> str:
    return "+923" + "".join(draw(st.lists(_DIGIT, min_size=9, max_size=9)))


@st.composite
def pans(draw: st.DrawFn) -> str:
    return luhn_complete("".join(draw(st.lists(_DIGIT, min_size=15, max_size=15))))


def _grouped(value: str, size: int = 4, sep: str = " ") -> str:
    return sep.join(value[i : i + size] for i in range(0, len(value), size))


@given(before=_SURROUNDING, iban=pk_ibans(), after=_SURROUNDING, spaced=st.booleans())
@example(before="x", iban=IBAN, after="y", spaced=False)
def test_no_iban_survives(before: str, iban: str, after: str, spaced: bool) -> None:
    shown = _grouped(iban) if spaced else iban
    redacted = redact_text(f"{before}{shown}{after}")
    assert shown not in redacted
    assert iban[8:] not in redacted.replace(" ", "")


@given(before=_SURROUNDING, cnic=cnics(), after=_SURROUNDING, dashed=st.booleans())
# A `%` before the digits: decoding `%10` first would split the CNIC and let it through.
@example(before="%", cnic="1000000000000", after="", dashed=False)
def test_no_cnic_survives(before: str, cnic: str, after: str, dashed: bool) -> None:
    shown = f"{cnic[:5]}-{cnic[5:12]}-{cnic[12]}" if dashed else cnic
    redacted = redact_text(f"{before}{shown}{after}")
    assert shown not in redacted
    assert cnic[5:12] not in redacted


@given(before=_SURROUNDING, phone=pk_mobiles(), after=_SURROUNDING, local=st.booleans())
def test_no_mobile_number_survives(before: str, phone: str, after: str, local: bool) -> None:
    shown = "0" + phone[3:] if local else phone
    redacted = redact_text(f"{before}{shown}{after}")
    assert shown not in redacted
    assert phone[6:11] not in redacted


@given(before=_SURROUNDING, pan=pans(), after=_SURROUNDING, grouped=st.booleans())
def test_no_card_number_survives(before: str, pan: str, after: str, grouped: bool) -> None:
    shown = _grouped(pan) if grouped else pan
    redacted = redact_text(f"{before}{shown}{after}")
    assert shown not in redacted
    assert pan not in redacted.replace(" ", "")


@given(st.text(max_size=200))
def test_redact_text_is_total_and_idempotent(text: str) -> None:
    once = redact_text(text)
    assert redact_text(once) == once


@given(
    parts=st.lists(st.one_of(_SURROUNDING, pk_ibans(), cnics(), pk_mobiles(), pans()), max_size=8)
)
def test_redact_text_is_idempotent_on_identifier_soup(parts: list[str]) -> None:
    once = redact_text(" ".join(parts))
    assert redact_text(once) == once


@given(iban=pk_ibans(), cnic=cnics(), phone=pk_mobiles(), pan=pans(), local=st.booleans())
def test_maskers_are_idempotent(iban: str, cnic: str, phone: str, pan: str, local: bool) -> None:
    # A value masked upstream and then logged under its key keeps its masked form.
    number = "0" + phone[3:] if local else phone
    for masker, value in (
        (mask_iban, iban),
        (mask_cnic, cnic),
        (mask_phone, number),
        (mask_pan, pan),
    ):
        once = masker(value)
        assert once != value
        assert masker(once) == once
        assert mask_value(None, once) == once


# The fast paths of redact_text (a rule group skipped when the character its patterns need
# is absent; the card rule matching only runs long enough to hold a card) must give exactly
# what applying every rule in turn gave, with the original digit-run pattern.
_ORIGINAL_DIGIT_RUN = re.compile(r"(?<!\d)\d+(?:[ \-]\d+)*")


def _redact_every_rule(text: str) -> str:
    if not text:
        return text
    for pattern, replace in masking._TEXT_RULES:
        if pattern is masking._DIGIT_RUN:
            pattern = _ORIGINAL_DIGIT_RUN
        text = pattern.sub(replace, text)
    return text


_MIXED_TEXT = st.lists(
    st.one_of(
        st.text(alphabet="0123456789 -:=/@._+PKpkabcdefBASICbearer\"'\n", max_size=40),
        st.sampled_from(
            [
                "4111 1111 1111 1111",
                "4111-1111-1111-1111",
                "PK36SCBL0000001123456702",
                "pk36 scbl 0000 0011 2345 6702",
                "35202-1234567-1",
                "3520212345671",
                "+923001234567",
                "0300-1234567",
                "Authorization: Bearer abcdefghijklmnopq",
                "client_secret=abcdefghijklmnop",
                '"password": "hunter22"',
                "https://user:pw@example.com/x",
                "eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl",
                "whsec_abcDEF123",
                "sk_live_0123456789abcdef",
                "Basic dXNlcjpwYXNz",
                "1 2345678901234",
                "4222 2222 22222",
                "x4222222222222",
                "12 34567890123456",
                "١٢٣٤٥٦٧٨٩٠١٢٣",
            ]
        ),
    ),
    max_size=6,
).map(" ".join)


@given(text=_MIXED_TEXT)
@example(text="1 2345678901234 5")
@example(text="id 01M87DW81WMYYW8YC7ZGKRG8J5 at 2026-11-24T21:30:42Z")
def test_redact_text_fast_paths_change_nothing(text: str) -> None:
    assert redact_text(text) == _redact_every_rule(text)


@pytest.mark.parametrize(
    ("encoded", "hidden"),
    [
        ("/v1/lookup?secret%3Ds3cr3t", "s3cr3t"),
        ("/v1/x?phone=%2B923001234567", "923001234567"),
        ("/v1/x/PK36SCBL0000001123456702%2F", "0000001123456702"),
        ("q=client_secret%3Dabcdefghijklmnop%26x%3D1", "abcdefghijklmnop"),
    ],
)
def test_percent_encoding_does_not_hide_a_secret_or_an_identifier(
    encoded: str, hidden: str
) -> None:
    redacted = redact_text(encoded)
    assert hidden not in redacted
    assert redact_text(redacted) == redacted

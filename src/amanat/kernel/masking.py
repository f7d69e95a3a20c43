"""THE masking policy: the single place that decides what sensitive data looks like when shown.

Logs, traces, error responses, the console and exports all call into this module; none of
them may invent its own rules. The policy:

* Secrets (passwords, tokens, client secrets, API keys, OTPs, PINs, cookies, private keys,
  ``Authorization`` headers …) are replaced by ``[redacted]``. Nothing of the value is kept,
  not even its length.
* Personal identifiers are shown partially, enough for a human to tell two apart:

  ==========  ==============================  ==============================
  kind        clear                           masked
  ==========  ==============================  ==============================
  IBAN        ``PK36SCBL0000001123456702``    ``PK**SCBL************6702``
  CNIC        ``35202-1234567-3``             ``*****-*******-3``
  mobile      ``+923001234567``               ``+92300*****67``
  card (PAN)  ``4111111111111111``            ``411111******1111``
  ==========  ==============================  ==============================

There are two ways in:

* **By key** (:func:`mask_mapping`, :func:`mask_value`): a value stored under a sensitive key
  (:data:`SENSITIVE_KEYS`, or any key ending in ``_secret``, ``_token``, ``_password`` …)
  is redacted whatever it looks like; a value under a personal key (:data:`KEYED_MASKERS`,
  e.g. ``debtor_iban``, ``msisdn``) goes through that key's masker, even when it arrives as
  an ``int`` or as a value object.
* **By shape** (:func:`redact_text`): every other string is scanned for anything that looks
  like a secret or an identifier, wherever it occurs in free text: in a log message, an
  exception message, a URL's query string, a JSON body quoted inside an error.

Why the free-text scanner is hand-written: the maintained redaction libraries (log
scrubbers, PII detectors such as Presidio or scrubadub) either pull in large NLP models or
know nothing of Pakistani identifiers: PK IBANs with their 4-letter bank codes, CNICs,
``03XX-XXXXXXX`` mobile numbers, Raast IDs. The patterns needed are few and precise, so they
live here, in pure standard-library Python, with property-based tests next to them.

Rule order matters and is deliberate (see ``_TEXT_RULES``): credential shapes first (a JWT
is full of digit runs), then ``key=value`` pairs, then IBANs before anything digit-based
(so the card rule never eats the 16-digit account part of an IBAN), dashed CNICs before
phone numbers, phone numbers before bare 13-digit CNICs (``9203001234567`` is a phone), and
13-digit CNICs before cards (a Luhn-valid CNIC must not get the card treatment, which would
show ten of its digits). Every masked form contains ``*`` or ``[redacted]``, which no rule
matches, so :func:`redact_text` is idempotent.

The scanner errs towards masking: a 13-digit run that is not a CNIC (an epoch in
milliseconds, a stretch of a hex digest) is masked too. Integers are never masked by shape
(they are amounts, counts and ids far more often than identifiers); put an integer CNIC or
phone number under its key name and the keyed masker handles it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import unquote

from amanat.kernel.ids import MintedId

__all__ = [
    "KEYED_MASKERS",
    "REDACTED",
    "SENSITIVE_KEYS",
    "Masker",
    "is_sensitive_key",
    "mask_cnic",
    "mask_iban",
    "mask_mapping",
    "mask_pan",
    "mask_phone",
    "mask_secret",
    "mask_value",
    "masker_for_key",
    "redact_text",
]

REDACTED: Final = "[redacted]"
"""What every secret becomes. Fixed text, so nothing about the value (not even its length)
leaks."""

_TRUNCATED: Final = "[truncated]"
_MAX_DEPTH: Final = 24
_ASCII_DIGITS: Final = frozenset("0123456789")

Masker = Callable[[str], str]
"""A function from a clear value to its masked form."""

# --------------------------------------------------------------------------------------
# Maskers for single values
# --------------------------------------------------------------------------------------


def _digits(text: str) -> str:
    return "".join(c for c in text if c in _ASCII_DIGITS)


def _star_digits(text: str, *, keep_first: int, keep_last: int) -> str:
    """Replace every ASCII digit with ``*`` except the first/last few; keep the layout."""
    total = sum(1 for c in text if c in _ASCII_DIGITS)
    out: list[str] = []
    index = 0
    for char in text:
        if char in _ASCII_DIGITS:
            keep = index < keep_first or index >= total - keep_last
            out.append(char if keep else "*")
            index += 1
        else:
            out.append(char)
    return "".join(out)


_MASKED_CHARS: Final = _ASCII_DIGITS | frozenset("*+-() ")


def _already_masked(text: str, *, total: tuple[int, int], shown: int) -> bool:
    """Whether ``text`` is a masked form (digits, ``*`` and separators) that shows at most
    ``shown`` digits of ``total[0]``-``total[1]`` positions and hides at least five.

    Masking is then a no-op, so a value masked upstream survives being logged under its
    key instead of collapsing to ``[redacted]``.
    """
    stars = text.count("*")
    if stars < 5 or not set(text) <= _MASKED_CHARS:
        return False
    digits = len(_digits(text))
    return digits <= shown and total[0] <= digits + stars <= total[1]


_IBAN_SHAPE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{8,30}")
_IBAN_MASKED = re.compile(r"[A-Z]{2}\*\*[A-Z0-9]{4}\**[A-Z0-9]{4}")
_IBAN_SEPARATORS = re.compile(r"[\s\-]+")


def mask_iban(iban: str) -> str:
    """Keep the country code, the bank code (characters 5-8) and the last four characters.

    ``PK36SCBL0000001123456702`` and ``pk36 scbl 0000 0011 2345 6702`` both give
    ``PK**SCBL************6702``. Anything not shaped like an IBAN gives ``[redacted]``.
    """
    compact = _IBAN_SEPARATORS.sub("", iban).upper()
    if _IBAN_MASKED.fullmatch(compact):
        return compact  # already masked
    if not _IBAN_SHAPE.fullmatch(compact):
        return REDACTED
    hidden = len(compact) - 12
    return f"{compact[:2]}**{compact[4:8]}{'*' * hidden}{compact[-4:]}"


def mask_cnic(cnic: str) -> str:
    """Keep only the last digit: ``35202-1234567-3`` → ``*****-*******-3``.

    The layout is kept, so ``3520212345673`` → ``************3``. Anything that does not
    hold exactly 13 digits gives ``[redacted]``.
    """
    text = cnic.strip()
    if _already_masked(text, total=(13, 13), shown=1):
        return text
    if len(_digits(text)) != 13:
        return REDACTED
    return _star_digits(text, keep_first=0, keep_last=1)


def _phone_prefix_length(text: str, digits: str) -> int:
    """How many leading digits to show: country code, trunk ``0`` if any, operator code."""
    international = text.lstrip().startswith("+")
    if digits.startswith("0092"):
        country_end = 4
    elif digits.startswith("92") and (international or len(digits) in (12, 13)):
        country_end = 2
    elif international:
        return 0  # a foreign number: show the '+' and the last two digits only
    elif digits.startswith("0"):
        return 4  # 0300 1234567: trunk 0 and the operator code
    elif digits.startswith("3") and len(digits) == 10:
        return 3  # 3001234567: national number without the trunk 0
    else:
        return 0
    if digits[country_end : country_end + 1] == "0":
        country_end += 1  # "+92 0300 …": a stray trunk 0 after the country code
    return country_end + 3


def mask_phone(phone: str) -> str:
    """Keep ``+92`` (or ``0``), the 3-digit operator code and the last two digits.

    ``+923001234567`` → ``+92300*****67``; ``03001234567`` → ``0300*****67``;
    ``0300-1234567`` → ``0300-*****67``. Separators are kept where they were. At least five
    digits are always hidden; something with fewer than nine digits gives ``[redacted]``.
    """
    text = phone.strip()
    if _already_masked(text, total=(9, 15), shown=10):
        return text
    digits = _digits(text)
    if len(digits) < 9:
        return REDACTED
    keep_first = _phone_prefix_length(text, digits)
    if len(digits) - keep_first - 2 < 5:
        keep_first = max(0, len(digits) - 7)
    return _star_digits(text, keep_first=keep_first, keep_last=2)


_PAN_CHARS: Final = _ASCII_DIGITS | frozenset(" -")


def mask_pan(pan: str) -> str:
    """Keep the first six and last four digits of a card number: ``411111******1111``.

    Any 13-19 digit value (spaces and dashes allowed) is masked this way, Luhn-valid or
    not: a mistyped card number under a card key is still a card number. The result is
    compact (no separators). Anything else gives ``[redacted]``.
    """
    text = pan.strip()
    if _already_masked(text, total=(13, 19), shown=10):
        return text
    digits = _digits(text)
    if not 13 <= len(digits) <= 19 or not set(text) <= _PAN_CHARS:
        return REDACTED
    return f"{digits[:6]}{'*' * (len(digits) - 10)}{digits[-4:]}"


def mask_secret(secret: str) -> str:
    """Always ``[redacted]``: nothing of a secret is shown, not even its length."""
    return REDACTED


def _luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


# --------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------

SENSITIVE_KEYS: frozenset[str] = frozenset(
    {
        # HTTP headers
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        # credentials and keys
        "password",
        "passwd",
        "passphrase",
        "password_hash",
        "secret",
        "client_secret",
        "secret_key",
        "credentials",
        "credential",
        "api_key",
        "apikey",
        "private_key",
        "signing_key",
        "master_key",
        "encryption_key",
        "webhook_secret",
        "signing_secret",
        "totp_secret",
        # tokens and OAuth artefacts
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "jwt",
        "assertion",
        "client_assertion",
        "code_verifier",
        "authorization_code",
        "auth_code",
        "session_id",
        "sessionid",
        # one-time codes and card security data
        "otp",
        "totp",
        "mfa_code",
        "recovery_code",
        "recovery_codes",
        "backup_codes",
        "pin",
        "mpin",
        "tpin",
        "pin_block",
        "cvv",
        "cvv2",
        "cvc",
        "cvc2",
    }
)
"""Lower-case key names whose values are always fully redacted in mappings.

Matching (:func:`is_sensitive_key`) is case-insensitive, treats ``-`` and ``_`` alike, and
also catches any key ending in ``_secret``, ``_token``, ``_password``, ``_passwd`` or
``_passphrase`` (``x-auth-token``, ``db_password``).

``code`` is not listed: in this code base ``code`` is overwhelmingly the stable error code
(``invalid_iban``), which logs and problem documents must show. A ``code`` value is
redacted only when it is not shaped like an error code (lower-case words joined by ``_``,
or an HTTP status of at most three digits), which catches OAuth authorization codes and
OTPs sent as ``code``.
"""

_SENSITIVE_SUFFIXES: Final = ("_secret", "_token", "_password", "_passwd", "_passphrase")


def _normalize_key(key: str) -> str:
    return key.strip().lower().replace("-", "_")


_SENSITIVE_NORMALIZED: Final = frozenset(_normalize_key(k) for k in SENSITIVE_KEYS)
_ERROR_CODE_SHAPE = re.compile(r"[a-z]+(?:_[a-z]+)*")


def _is_error_code(value: str) -> bool:
    """``invalid_iban`` or an HTTP status such as ``404``, not an OAuth code or an OTP."""
    if value.isascii() and value.isdigit():
        return len(value) <= 3
    return len(value) <= 64 and _ERROR_CODE_SHAPE.fullmatch(value) is not None


def is_sensitive_key(key: str) -> bool:
    """Whether a value stored under ``key`` must be fully redacted."""
    normalized = _normalize_key(key)
    return normalized in _SENSITIVE_NORMALIZED or normalized.endswith(_SENSITIVE_SUFFIXES)


KEYED_MASKERS: Mapping[str, Masker] = MappingProxyType(
    {
        "iban": mask_iban,
        "debtor_iban": mask_iban,
        "creditor_iban": mask_iban,
        "account_iban": mask_iban,
        "cnic": mask_cnic,
        "phone": mask_phone,
        "phone_number": mask_phone,
        "mobile": mask_phone,
        "mobile_number": mask_phone,
        "msisdn": mask_phone,
        "raast_id": mask_phone,
        "pan": mask_pan,
        "card_number": mask_pan,
    }
)
"""Personal fields shown partially, by lower-case key name.

:func:`masker_for_key` also matches case-insensitively, treats ``-`` as ``_`` and matches
suffixes: ``beneficiary_iban``, ``payer_cnic``, ``customer_msisdn`` …
"""

_KEYED_SUFFIXES: Final[tuple[tuple[str, Masker], ...]] = (
    ("_iban", mask_iban),
    ("_cnic", mask_cnic),
    ("_phone", mask_phone),
    ("_phone_number", mask_phone),
    ("_mobile", mask_phone),
    ("_mobile_number", mask_phone),
    ("_msisdn", mask_phone),
    ("_raast_id", mask_phone),
    ("_pan", mask_pan),
    ("_card_number", mask_pan),
)


def masker_for_key(key: str) -> Masker | None:
    """The partial masker for a personal field named ``key``, or ``None``."""
    normalized = _normalize_key(key)
    masker = KEYED_MASKERS.get(normalized)
    if masker is not None:
        return masker
    for suffix, suffix_masker in _KEYED_SUFFIXES:
        if normalized.endswith(suffix):
            return suffix_masker
    return None


# --------------------------------------------------------------------------------------
# Free text
# --------------------------------------------------------------------------------------

_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]


def _looks_like_credential(token: str) -> bool:
    """Tell ``Bearer dGhpc2lzYXRva2Vu`` from the prose ``Bearer authentication``."""
    if len(token) >= 16:
        return True
    if len(token) < 8:
        return False
    return any(c in _ASCII_DIGITS or c in "+/=._~-" for c in token) or any(
        c.isupper() for c in token[1:]
    )


def _decodes_to_user_pass(token: str) -> bool:
    padded = token + "=" * (-len(token) % 4)
    try:
        decoded = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded


# Credential shapes -------------------------------------------------------------------

_JWT = re.compile(r"eyJ[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]*){2,4}")


def _redact_whole(_match: re.Match[str]) -> str:
    return REDACTED


_BEARER = re.compile(r"(?i)\b(bearer)(\s+)([A-Za-z0-9\-._~+/]+=*)(?![\w=])")


def _redact_bearer(match: re.Match[str]) -> str:
    if not _looks_like_credential(match.group(3)):
        return match.group(0)
    return f"{match.group(1)}{match.group(2)}{REDACTED}"


_BASIC = re.compile(r"(?i)\b(basic)(\s+)([A-Za-z0-9+/]+={0,2})(?![A-Za-z0-9+/=])")


def _redact_basic(match: re.Match[str]) -> str:
    token = match.group(3)
    if not (_looks_like_credential(token) or _decodes_to_user_pass(token)):
        return match.group(0)
    return f"{match.group(1)}{match.group(2)}{REDACTED}"


_WEBHOOK_SECRET = re.compile(r"whsec_[A-Za-z0-9+/=_\-]+")
_CLIENT_SECRET = re.compile(r"(?<![A-Za-z0-9])(sk|cs)_[A-Za-z0-9_\-]{16,}")
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/@]*):([^\s@/]+)@")


def _prefix_keeper(match: re.Match[str]) -> str:
    return f"{match.group(0).split('_', 1)[0]}_{REDACTED}"


def _redact_url_password(match: re.Match[str]) -> str:
    return f"{match.group(1)}:{REDACTED}@"


# key=value pairs ----------------------------------------------------------------------


def _key_alternative(name: str) -> str:
    return r"[_\-]".join(re.escape(part) for part in name.split("_"))


_TEXT_KEY_NAMES: Final = sorted(_SENSITIVE_NORMALIZED | {"code"}, key=len, reverse=True)
_TEXT_KEY = (
    r"(?:"
    + "|".join(_key_alternative(name) for name in _TEXT_KEY_NAMES)
    + r"|[A-Za-z0-9][\w.\-]*?[_\-](?:secret|token|password|passwd|passphrase)"
    + r")"
)

# HTTP header lines ("Authorization: Bearer …"): the value runs to the end of the line.
_HEADER_LINE = re.compile(
    r"(?im)(?<![\w.\-])(proxy-authorization|authorization|set-cookie|cookie|x-api-key)"
    r"([ \t]*:[ \t]*)(?!\[redacted\])(\S[^\r\n]*)"
)


def _redact_header_line(match: re.Match[str]) -> str:
    return f"{match.group(1)}{match.group(2)}{REDACTED}"


# "password=…", "client_secret: …", JSON '"token": "…"', Python repr "'pin': 1234".
_PAIR = re.compile(
    r"(?i)(?<![\w.\-])(?P<kq>[\"']?)(?P<key>" + _TEXT_KEY + r")(?![\w.\-])(?P=kq)"
    r"(?P<sep>\s*[:=]\s*)"
    r"(?P<val>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'"
    r"|(?:(?:bearer|basic|digest|token)\s+)?[^\s&\"',;<>(){}]+)"
)


def _redact_pair(match: re.Match[str]) -> str:
    value = match.group("val")
    quote = value[0] if value[:1] in {'"', "'"} else ""
    inner = value[1:-1] if quote else value
    if inner in {REDACTED, "", "null", "None"}:
        return match.group(0)
    if _normalize_key(match.group("key")) == "code" and _is_error_code(inner):
        return match.group(0)
    head = match.group(0)[: match.start("val") - match.start(0)]
    return f"{head}{quote}{REDACTED}{quote}"


# Identifiers -------------------------------------------------------------------------

_IBAN = re.compile(r"(?i)PK[ ]?[0-9]{2}[ \-]?[A-Z]{4}(?:[ \-]?[0-9]{4}){4}")
_CNIC_DASHED = re.compile(r"(?<!\d)\d{5}([\- ])\d{7}\1\d(?!\d)")
_CNIC_PLAIN = re.compile(r"(?<!\d)\d{13}(?!\d)")
_PHONE = re.compile(
    r"(?<!\d)(?:"
    # +92 / 0092 / 92, optional trunk 0, operator code 3XX (optionally in brackets)
    r"(?:\+|00)?92[ \-]?\(?(?:0[ \-]?)?3\d{2}\)?"
    # or the local form 03XX
    r"|\(?03\d{2}\)?"
    r")[ \-]?\d{3}[ \-]?\d{4}(?!\d)"
)
# A run of digit groups joined by single spaces or dashes, holding at least 13 digits:
# shorter runs cannot hold a card number, and calling back into Python for every short run
# (ids, amounts, timestamps) made this the costliest rule on every log line. The match
# always starts at the run's first digit, so it is the whole run, as before.
_DIGIT_RUN = re.compile(r"(?<!\d)\d(?:[ \-]?\d){12,}")
_DIGIT_GROUP = re.compile(r"\d+")


def _mask_iban_match(match: re.Match[str]) -> str:
    return mask_iban(match.group(0))


def _mask_cnic_match(match: re.Match[str]) -> str:
    return mask_cnic(match.group(0))


def _mask_phone_match(match: re.Match[str]) -> str:
    return mask_phone(match.group(0))


def _mask_cards_in_run(match: re.Match[str]) -> str:
    """Mask every Luhn-valid 13-19 digit card number in a run of digit groups.

    A run is digits separated by single spaces or dashes (``4111 1111 1111 1111``). A card
    is a window of whole groups, so a longer unbroken digit run is never split; the
    longest valid window from each starting group wins.
    """
    run = match.group(0)
    groups = list(_DIGIT_GROUP.finditer(run))
    if sum(len(g.group(0)) for g in groups) < 13:
        return run
    out: list[str] = []
    written = 0
    i = 0
    while i < len(groups):
        found: tuple[int, str] | None = None
        digits = ""
        for j in range(i, len(groups)):
            digits += groups[j].group(0)
            if len(digits) > 19:
                break
            if len(digits) >= 13 and _luhn_ok(digits):
                found = (j, digits)
        if found is None:
            i += 1
            continue
        j, digits = found
        out.append(run[written : groups[i].start()])
        out.append(mask_pan(digits))
        written = groups[j].end()
        i = j + 1
    out.append(run[written:])
    return "".join(out)


_CREDENTIAL_RULES: Final[tuple[_Rule, ...]] = (
    (_JWT, _redact_whole),
    (_BEARER, _redact_bearer),
    (_BASIC, _redact_basic),
    (_WEBHOOK_SECRET, _prefix_keeper),
    (_CLIENT_SECRET, _prefix_keeper),
)
# Each of these needs a ":" (URL password, header line) or a ":"/"=" (pair) to match.
_SEPARATOR_RULES: Final[tuple[_Rule, ...]] = (
    (_URL_PASSWORD, _redact_url_password),
    (_HEADER_LINE, _redact_header_line),
    (_PAIR, _redact_pair),
)
# Each of these needs a digit to match; longest and most specific first.
_DIGIT_RULES: Final[tuple[_Rule, ...]] = (
    (_IBAN, _mask_iban_match),
    (_CNIC_DASHED, _mask_cnic_match),
    (_PHONE, _mask_phone_match),
    (_CNIC_PLAIN, _mask_cnic_match),
    (_DIGIT_RUN, _mask_cards_in_run),
)
_TEXT_RULES: Final[tuple[_Rule, ...]] = _CREDENTIAL_RULES + _SEPARATOR_RULES + _DIGIT_RULES
"""Every rule, in the order applied: credential shapes before anything digit-based can cut
them up, then named secrets (URL passwords, header lines, key=value pairs), then
identifiers."""
_ANY_DIGIT = re.compile(r"\d")


def redact_text(text: str) -> str:
    """Mask every secret and personal identifier found anywhere in free text.

    Finds PK IBANs (compact or in groups of four, any case), CNICs (``XXXXX-XXXXXXX-X`` or
    13 digits standing alone), Pakistani mobile numbers (``+923…``, ``923…``, ``00923…``,
    ``03XX-XXXXXXX``, ``03XX XXXXXXX``), Luhn-valid card numbers (13-19 digits, optionally
    grouped by spaces or dashes), ``Bearer``/``Basic`` credentials, JWTs, ``whsec_``,
    ``sk_`` and ``cs_`` secrets, passwords in URLs, sensitive header lines and sensitive
    ``key=value`` / ``"key": "value"`` pairs. Idempotent.
    """
    if not text:
        return text
    text = _redact_once(text)
    # Percent-encoding (a URL's path or query, as an access log repeats it) would hide
    # `secret%3Ds3cr3t` from every rule: judge the decoded text too, after the text as it
    # came (decoding can also split a run of digits the first pass masked). Each decoding
    # shortens the text, and masking adds no `%`, so this ends and stays idempotent.
    while "%" in text:
        decoded = unquote(text)
        if decoded == text:
            break
        text = _redact_once(decoded)
    return text


def _redact_once(text: str) -> str:
    for pattern, replace in _CREDENTIAL_RULES:
        text = pattern.sub(replace, text)
    # The groups below are skipped when the character every one of their patterns needs is
    # absent (checked on the text as it is by then): the same result, a fraction of the work
    # for the ids, paths and words that make up most log values.
    if ":" in text or "=" in text:
        for pattern, replace in _SEPARATOR_RULES:
            text = pattern.sub(replace, text)
    if _ANY_DIGIT.search(text) is not None:
        for pattern, replace in _DIGIT_RULES:
            text = pattern.sub(replace, text)
    return text


# --------------------------------------------------------------------------------------
# Structures
# --------------------------------------------------------------------------------------


def _rebuild(original: object, items: list[object]) -> object:
    """The masked items in the original's kind of container (a tuple for any tuple)."""
    if isinstance(original, tuple):
        return tuple(items)
    if isinstance(original, frozenset):
        return frozenset(items)
    if isinstance(original, set):
        return set(items)
    return items


def _apply_masker(masker: Masker, value: object, depth: int) -> object:
    if value is None:
        return None
    if depth > _MAX_DEPTH:
        return _TRUNCATED
    if isinstance(value, str):
        return masker(value)
    if isinstance(value, Mapping):
        return _mask_mapping(value, depth + 1)
    if isinstance(value, list | tuple | set | frozenset):
        return _rebuild(value, [_apply_masker(masker, item, depth + 1) for item in value])
    if isinstance(value, bytes | bytearray):
        return masker(value.decode("utf-8", "replace"))
    return masker(str(value))  # an int CNIC, an Iban value object …


@functools.lru_cache(maxsize=2048)
def _key_policy(key: str) -> tuple[bool, Masker | None, bool]:
    """(sensitive, partial masker, named ``code``) for a key; keys repeat, so remembered."""
    return is_sensitive_key(key), masker_for_key(key), _normalize_key(key) == "code"


def _mask_value(key: str | None, value: object, depth: int) -> object:
    if depth > _MAX_DEPTH:
        return _TRUNCATED
    if key is not None:
        sensitive, masker, named_code = _key_policy(key)
        if sensitive:
            return None if value is None else REDACTED
        if masker is not None:
            return _apply_masker(masker, value, depth)
        if named_code and isinstance(value, str) and not _is_error_code(value):
            return REDACTED
    if isinstance(value, str):
        return value if type(value) is MintedId else redact_text(value)
    if isinstance(value, Mapping):
        return _mask_mapping(value, depth + 1)
    if isinstance(value, list | tuple | set | frozenset):
        return _rebuild(value, [_mask_value(None, item, depth + 1) for item in value])
    return value


def _mask_mapping(data: Mapping[Any, object], depth: int) -> dict[Any, object]:
    return {
        key: _mask_value(key if isinstance(key, str) else None, value, depth)
        for key, value in data.items()
    }


def mask_value(key: str | None, value: object) -> object:
    """Mask ``value`` as it would be masked if stored under ``key`` (``None``: no key).

    Sensitive key → ``[redacted]`` (``None`` stays ``None``); personal key → its masker,
    applied to ``str(value)`` when the value is not a string; dicts, lists, tuples and sets
    are walked; other strings go through :func:`redact_text`; other values are returned
    unchanged. Structures nested deeper than 24 levels become ``[truncated]``.
    """
    return _mask_value(key, value, 0)


def mask_mapping(data: Mapping[Any, object]) -> dict[Any, object]:
    """A masked copy of ``data`` (see :func:`mask_value`); the input is not modified."""
    return _mask_mapping(data, 0)

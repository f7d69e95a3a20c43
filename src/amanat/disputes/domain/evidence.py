"""What a dispute's evidence may be: four kinds of file, checked by their first bytes.

A file is accepted only if its declared ``Content-Type`` is one of :data:`ALLOWED_TYPES`
and its content is that type: a PDF starts ``%PDF-``, a PNG with its 8-byte signature, a
JPEG with ``FF D8 FF``; plain text is UTF-8 with no control characters but tab, line
feed, carriage return and form feed. A file claiming one type and holding another (an
executable renamed ``.pdf``) is refused, so what an operator opens is what it says it is.
The size cap is a setting (``AMANAT_DISPUTES__EVIDENCE_MAX_BYTES``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from amanat.disputes.domain.errors import (
    EvidenceContentMismatch,
    EvidenceEmpty,
    EvidenceTooLarge,
    EvidenceTypeNotAllowed,
)

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
TEXT = "text/plain"

# Each type's signature (None: checked as text instead).
ALLOWED_TYPES: dict[str, bytes | None] = {
    PDF: b"%PDF-",
    PNG: b"\x89PNG\r\n\x1a\n",
    JPEG: b"\xff\xd8\xff",
    TEXT: None,
}
EXTENSIONS = {PDF: "pdf", PNG: "png", JPEG: "jpg", TEXT: "txt"}
_TEXT_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii"})
# Control characters plain text may not hold (tab, line feed, form feed, return may).
_CONTROLS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class CheckedFile:
    content_type: str
    size: int
    sha256: str


def media_type(content_type: str | None) -> str:
    """The declared type, lower-cased and without parameters, if evidence may be of it."""
    if not content_type:
        raise EvidenceTypeNotAllowed(
            "Send the file with its Content-Type: " + ", ".join(ALLOWED_TYPES) + ".",
            reason="content_type_missing",
        )
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    if media not in ALLOWED_TYPES:
        raise EvidenceTypeNotAllowed(
            f"Evidence may be {', '.join(ALLOWED_TYPES)}; not {media[:60]!r}.",
            reason="content_type_not_allowed",
        )
    if media == TEXT:
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset" and (
                value.strip().strip('"').lower() not in _TEXT_CHARSETS
            ):
                raise EvidenceTypeNotAllowed(
                    "Plain-text evidence is UTF-8: send charset=utf-8 or none.",
                    reason="charset_not_allowed",
                )
    return media


def _is_plain_text(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return _CONTROLS.search(text) is None


def check(content_type: str | None, data: bytes, *, max_bytes: int) -> CheckedFile:
    """The file as it will be kept, or the refusal that says what is wrong with it."""
    media = media_type(content_type)
    if not data:
        raise EvidenceEmpty("The file is empty.", reason="empty")
    if len(data) > max_bytes:
        raise EvidenceTooLarge(
            f"Evidence files are at most {max_bytes} bytes; this one is {len(data)}.",
            reason="too_large",
        )
    signature = ALLOWED_TYPES[media]
    if signature is None:
        matches = _is_plain_text(data) and not any(
            data.startswith(other) for other in ALLOWED_TYPES.values() if other
        )
    else:
        matches = data.startswith(signature)
    if not matches:
        raise EvidenceContentMismatch(
            f"The file's content is not {media}: its first bytes say otherwise.",
            reason="content_does_not_match_type",
        )
    return CheckedFile(media, len(data), hashlib.sha256(data).hexdigest())

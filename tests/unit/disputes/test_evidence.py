"""Evidence files: four types, each checked by its first bytes, a size cap, nothing empty."""

from __future__ import annotations

import hashlib

import pytest

from amanat.disputes.domain.errors import (
    EvidenceContentMismatch,
    EvidenceEmpty,
    EvidenceTooLarge,
    EvidenceTypeNotAllowed,
)
from amanat.disputes.domain.evidence import check, media_type

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF"
TEXT = "Reçu: livré le 24/11, signé.\r\n\tBilal\f".encode()
CAP = 1024


@pytest.mark.parametrize(
    ("declared", "data", "kept"),
    [
        ("application/pdf", PDF, "application/pdf"),
        ("Application/PDF", PDF, "application/pdf"),
        ("image/png", PNG, "image/png"),
        ("image/jpeg", JPEG, "image/jpeg"),
        ("text/plain", TEXT, "text/plain"),
        ("text/plain; charset=UTF-8", TEXT, "text/plain"),
        ('text/plain; charset="us-ascii"', b"ok", "text/plain"),
    ],
)
def test_accepted(declared: str, data: bytes, kept: str) -> None:
    checked = check(declared, data, max_bytes=CAP)
    assert checked.content_type == kept
    assert checked.size == len(data)
    assert checked.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("declared", "reason"),
    [
        (None, "content_type_missing"),
        ("", "content_type_missing"),
        ("application/octet-stream", "content_type_not_allowed"),
        ("image/gif", "content_type_not_allowed"),
        ("application/x-msdownload", "content_type_not_allowed"),
        ("text/html", "content_type_not_allowed"),
        ("text/plain; charset=latin-1", "charset_not_allowed"),
    ],
)
def test_types_refused(declared: str | None, reason: str) -> None:
    with pytest.raises(EvidenceTypeNotAllowed) as refused:
        media_type(declared)
    assert refused.value.code == "evidence_type_not_allowed"
    assert refused.value.reason == reason


@pytest.mark.parametrize(
    ("declared", "data"),
    [
        ("application/pdf", PNG),
        ("application/pdf", b"MZ\x90\x00 an executable"),
        ("image/png", JPEG),
        ("image/jpeg", PDF),
        ("image/png", b"\x89PNG"),  # cut short
        ("text/plain", b"\xff\xfe not utf-8"),
        ("text/plain", b"nul \x00 inside"),
        ("text/plain", b"bell \x07"),
        ("text/plain", b"%PDF-1.4 claims to be text"),
    ],
)
def test_content_that_is_not_its_type(declared: str, data: bytes) -> None:
    with pytest.raises(EvidenceContentMismatch) as refused:
        check(declared, data, max_bytes=CAP)
    assert refused.value.code == "evidence_content_mismatch"


def test_empty_and_too_large() -> None:
    with pytest.raises(EvidenceEmpty):
        check("application/pdf", b"", max_bytes=CAP)
    assert check("application/pdf", PDF + bytes(CAP - len(PDF)), max_bytes=CAP).size == CAP
    with pytest.raises(EvidenceTooLarge) as refused:
        check("application/pdf", PDF + bytes(CAP), max_bytes=CAP)
    assert refused.value.code == "evidence_too_large"


def test_the_type_is_checked_before_the_size() -> None:
    with pytest.raises(EvidenceTypeNotAllowed):
        check("image/gif", bytes(CAP * 2), max_bytes=CAP)

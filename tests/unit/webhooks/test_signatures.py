"""Our signatures are Standard Webhooks signatures: the reference library verifies them
unchanged, refuses tampered or stale ones, and accepts either secret during a rotation.
Our own checker agrees and honours its tolerance."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook, WebhookVerificationError

from amanat.webhooks.domain.endpoints import format_secret
from amanat.webhooks.signatures import SignatureError, Signer, sign, signature_header, verify

WEBHOOK_ID = "evt_01M87DC4FPJTBD0CHPTVFH0Q5R"
BODY = json.dumps(
    {"id": WEBHOOK_ID, "object": "event", "type": "payment.succeeded", "data": {"object": {}}},
    separators=(",", ":"),
).encode()


def new_secret() -> str:
    return format_secret(secrets.token_bytes(32))


def now_stamp() -> int:
    # The reference verifier reads the wall clock, so sign "now".
    return int(datetime.now(UTC).timestamp())


def headers(signature: str, timestamp: int, webhook_id: str = WEBHOOK_ID) -> dict[str, str]:
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def test_the_form_of_a_signature() -> None:
    signature = sign(new_secret(), WEBHOOK_ID, now_stamp(), BODY)
    version, _, value = signature.partition(",")
    assert version == "v1"
    assert len(value) == 44  # base64 of 32 bytes


def test_the_reference_library_verifies_our_signature() -> None:
    secret = new_secret()
    stamp = now_stamp()
    signed = headers(signature_header([secret], WEBHOOK_ID, stamp, BODY), stamp)
    assert Webhook(secret).verify(BODY, signed) == json.loads(BODY)


def test_the_reference_library_refuses_a_tampered_body() -> None:
    secret = new_secret()
    stamp = now_stamp()
    signed = headers(signature_header([secret], WEBHOOK_ID, stamp, BODY), stamp)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"succeeded", b"failed"), signed)


def test_the_reference_library_refuses_another_id() -> None:
    secret = new_secret()
    stamp = now_stamp()
    signature = signature_header([secret], WEBHOOK_ID, stamp, BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, headers(signature, stamp, webhook_id="evt_other"))


def test_the_reference_library_refuses_a_wrong_secret() -> None:
    stamp = now_stamp()
    signed = headers(signature_header([new_secret()], WEBHOOK_ID, stamp, BODY), stamp)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, signed)


def test_the_reference_library_refuses_an_old_timestamp() -> None:
    secret = new_secret()
    stamp = now_stamp() - 600  # ten minutes ago: outside its five-minute window
    signed = headers(signature_header([secret], WEBHOOK_ID, stamp, BODY), stamp)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, signed)


def test_the_timestamp_is_part_of_what_is_signed() -> None:
    secret = new_secret()
    stamp = now_stamp()
    signature = signature_header([secret], WEBHOOK_ID, stamp, BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, headers(signature, stamp - 1))


def test_during_a_rotation_either_secret_verifies() -> None:
    new, old = new_secret(), new_secret()
    stamp = now_stamp()
    header = signature_header([new, old], WEBHOOK_ID, stamp, BODY)
    parts = header.split(" ")
    assert len(parts) == 2 and all(p.startswith("v1,") for p in parts)
    signed = headers(header, stamp)
    for secret in (new, old):
        Webhook(secret).verify(BODY, signed)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, signed)


def test_a_non_ascii_body_round_trips() -> None:
    secret = new_secret()
    stamp = now_stamp()
    body = json.dumps({"description": "چائے کے پیسے"}, ensure_ascii=False).encode()
    signed = headers(signature_header([secret], WEBHOOK_ID, stamp, body), stamp)
    Webhook(secret).verify(body, signed)
    verify(secret, signed, body, now=datetime.fromtimestamp(stamp, UTC))


# -- our own checker --------------------------------------------------------------------

AT = datetime(2026, 11, 24, 8, 15, 30, tzinfo=UTC)
AT_STAMP = int(AT.timestamp())


def test_our_verify_accepts_and_refuses_like_the_reference() -> None:
    secret = new_secret()
    signed = headers(signature_header([secret], WEBHOOK_ID, AT_STAMP, BODY), AT_STAMP)
    verify(secret, signed, BODY, now=AT)
    verify(secret, {k.upper(): v for k, v in signed.items()}, BODY, now=AT)
    with pytest.raises(SignatureError):
        verify(secret, signed, BODY + b" ", now=AT)
    with pytest.raises(SignatureError):
        verify(new_secret(), signed, BODY, now=AT)
    with pytest.raises(SignatureError):
        verify(secret, {**signed, "webhook-id": "evt_other"}, BODY, now=AT)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_our_verify_needs_all_three_headers(missing: str) -> None:
    secret = new_secret()
    signed = headers(signature_header([secret], WEBHOOK_ID, AT_STAMP, BODY), AT_STAMP)
    del signed[missing]
    with pytest.raises(SignatureError):
        verify(secret, signed, BODY, now=AT)


@pytest.mark.parametrize(
    "offered",
    ["v2,abc", "v1,not base64!!", "garbage", "v1,", "v1a,AAAA v1,AAAA"],
)
def test_our_verify_refuses_malformed_signatures_without_crashing(offered: str) -> None:
    with pytest.raises(SignatureError):
        verify(new_secret(), headers(offered, AT_STAMP), BODY, now=AT)


def test_our_verify_refuses_a_non_integer_timestamp() -> None:
    secret = new_secret()
    signed = headers(signature_header([secret], WEBHOOK_ID, AT_STAMP, BODY), AT_STAMP)
    with pytest.raises(SignatureError):
        verify(secret, {**signed, "webhook-timestamp": "soon"}, BODY, now=AT)


def test_our_verify_honours_its_tolerance() -> None:
    secret = new_secret()
    signed = headers(signature_header([secret], WEBHOOK_ID, AT_STAMP, BODY), AT_STAMP)
    ten_minutes_later = AT + timedelta(minutes=10)
    with pytest.raises(SignatureError):
        verify(secret, signed, BODY, now=ten_minutes_later)  # default: five minutes
    verify(secret, signed, BODY, now=ten_minutes_later, tolerance=timedelta(minutes=15))
    # Both ways: a timestamp from the future is refused too.
    with pytest.raises(SignatureError):
        verify(secret, signed, BODY, now=AT - timedelta(minutes=10))
    verify(secret, signed, BODY, now=AT - timedelta(minutes=10), tolerance=timedelta(minutes=11))
    # The edge: exactly the tolerance is still inside.
    verify(secret, signed, BODY, now=AT + timedelta(minutes=5))
    with pytest.raises(SignatureError):
        verify(secret, signed, BODY, now=AT + timedelta(minutes=5, seconds=1))


def test_our_verify_accepts_either_rotation_signature() -> None:
    new, old = new_secret(), new_secret()
    signed = headers(signature_header([new, old], WEBHOOK_ID, AT_STAMP, BODY), AT_STAMP)
    verify(new, signed, BODY, now=AT)
    verify(old, signed, BODY, now=AT)
    with pytest.raises(SignatureError):
        verify(new_secret(), signed, BODY, now=AT)


@given(st.binary(max_size=64).map(lambda b: b.hex().encode()), st.integers(0, 2**31))
def test_sign_is_the_reference_sign(body: bytes, stamp: int) -> None:
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    expected = Webhook(secret).sign(WEBHOOK_ID, datetime.fromtimestamp(stamp, UTC), body.decode())
    assert sign(secret, WEBHOOK_ID, stamp, body) == expected
    verify(secret, headers(expected, stamp), body, now=datetime.fromtimestamp(stamp, UTC))


@given(body=st.binary(max_size=300), stamp=st.integers(min_value=0, max_value=2**33))
def test_the_signer_makes_the_packages_signature_byte_for_byte(body: bytes, stamp: int) -> None:
    text = body.decode("utf-8", "backslashreplace").encode()  # bodies are UTF-8 JSON
    current, previous = new_secret(), new_secret()
    signer = Signer()
    for _ in range(2):  # the second time from the decoded-key cache
        assert signer.header([current, previous], WEBHOOK_ID, stamp, text) == signature_header(
            [current, previous], WEBHOOK_ID, stamp, text
        )


def test_the_reference_library_verifies_the_signers_signature() -> None:
    secret = new_secret()
    stamp = now_stamp()
    signed = headers(Signer().header([secret], WEBHOOK_ID, stamp, BODY), stamp)
    assert Webhook(secret).verify(BODY, signed) == json.loads(BODY)

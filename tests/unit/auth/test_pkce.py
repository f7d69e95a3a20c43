"""PKCE (RFC 7636): S256 only, checked against the specification's own test vector."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amanat.auth.pkce import check_challenge, s256_challenge, verifier_matches
from amanat.kernel.errors import InvalidInput

# RFC 7636 Appendix B: the 32 random octets, their base64url (the verifier), and the
# base64url SHA-256 of the verifier's ASCII (the challenge).
# fmt: off
RFC_OCTETS = bytes([
    116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186,
    22, 212, 37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
])
# fmt: on
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
verifiers = st.text(alphabet=UNRESERVED, min_size=43, max_size=128)


def test_rfc7636_appendix_b_vector() -> None:
    assert base64.urlsafe_b64encode(RFC_OCTETS).decode().rstrip("=") == RFC_VERIFIER
    assert s256_challenge(RFC_VERIFIER) == RFC_CHALLENGE
    assert verifier_matches(RFC_VERIFIER, RFC_CHALLENGE)


def test_rfc_challenge_is_accepted() -> None:
    assert check_challenge(RFC_CHALLENGE, "S256") == RFC_CHALLENGE


@pytest.mark.parametrize("method", ["plain", "s256", "", None, "S512"])
def test_only_s256_is_accepted(method: str | None) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_challenge(RFC_CHALLENGE, method)
    assert caught.value.code == "invalid_request"


@pytest.mark.parametrize(
    "challenge",
    [
        None,
        "",
        RFC_CHALLENGE[:-1],  # 42 characters
        RFC_CHALLENGE + "A",  # 44 characters
        RFC_CHALLENGE[:-1] + "=",  # padding is not base64url without padding
        RFC_CHALLENGE[:-1] + "+",  # standard base64, not base64url
        RFC_VERIFIER + "x" * 20,  # a verifier sent as the challenge (plain)
    ],
)
def test_malformed_challenges_are_refused(challenge: str | None) -> None:
    with pytest.raises(InvalidInput):
        check_challenge(challenge, "S256")


@pytest.mark.parametrize(
    "verifier",
    [
        None,
        "",
        RFC_VERIFIER[:-1],  # 42 characters: too short even though the hash differs anyway
        RFC_CHALLENGE,  # the challenge is not the verifier
        RFC_VERIFIER + " ",
        "a" * 129,
    ],
)
def test_wrong_verifiers_do_not_match(verifier: str | None) -> None:
    assert not verifier_matches(verifier, RFC_CHALLENGE)


def test_plain_method_equivalent_never_matches() -> None:
    # With "plain" the challenge would equal the verifier; S256 must not accept that.
    verifier = "A" * 43
    assert not verifier_matches(verifier, verifier)


@given(verifiers)
def test_s256_is_base64url_sha256_without_padding(verifier: str) -> None:
    expected = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    )
    challenge = s256_challenge(verifier)
    assert challenge == expected
    assert len(challenge) == 43
    assert check_challenge(challenge, "S256") == challenge
    assert verifier_matches(verifier, challenge)


@given(verifiers, verifiers)
def test_a_different_verifier_does_not_match(first: str, second: str) -> None:
    if first != second:
        assert not verifier_matches(second, s256_challenge(first))


def test_a_trailing_newline_is_not_part_of_a_valid_challenge() -> None:
    with pytest.raises(InvalidInput):
        check_challenge(RFC_CHALLENGE + "\n", "S256")

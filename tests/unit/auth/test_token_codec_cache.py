"""The codec remembers signature checks, and tokens whose every claim held; expiry and key
status are checked on every request, and a token refused for a claim is never remembered
as accepted."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from amanat.auth.adapters import tokens
from amanat.auth.adapters.tokens import EcKeyMaterial, JwtAccessTokenCodec, KeyRing
from amanat.auth.ports import InvalidToken
from amanat.kernel.clock import FrozenClock

ISSUER = "http://issuer.test"


@pytest.fixture
def world() -> tuple[JwtAccessTokenCodec, FrozenClock, list[tokens.SigningKey]]:
    clock = FrozenClock(datetime(2026, 11, 24, 12, tzinfo=UTC))
    keys = [EcKeyMaterial(None).generate(clock.now())]

    async def load() -> list[tokens.SigningKey]:
        return list(keys)

    ring = KeyRing(load, clock, None, refresh_seconds=0.0)
    codec = JwtAccessTokenCodec(ring, issuer=ISSUER, audience=ISSUER, clock=clock)
    return codec, clock, keys


def _claims(clock: FrozenClock, ttl: int = 300) -> dict[str, object]:
    now = int(clock.now().timestamp())
    return {
        "iss": ISSUER,
        "aud": ISSUER,
        "iat": now,
        "exp": now + ttl,
        "client_id": "cli_1",
        "jti": "tok_1",
    }


@pytest.fixture
def signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = tokens.verify_signature

    def counting(token: str, key: object, algorithms: list[str]) -> dict[str, object]:
        calls.append(token)
        return real(token, key, algorithms)  # type: ignore[arg-type]

    monkeypatch.setattr(tokens, "verify_signature", counting)
    return calls


async def test_second_use_of_a_token_skips_the_signature_check(
    world: tuple[JwtAccessTokenCodec, FrozenClock, list[tokens.SigningKey]],
    signature_checks: list[str],
) -> None:
    codec, clock, _ = world
    token = await codec.sign(_claims(clock))
    first = await codec.verify(token)
    first["client_id"] = "tampered by a caller"
    second = await codec.verify(token)
    assert second["client_id"] == "cli_1"
    assert signature_checks == [token]


async def test_a_cached_token_still_expires(
    world: tuple[JwtAccessTokenCodec, FrozenClock, list[tokens.SigningKey]],
    signature_checks: list[str],
) -> None:
    codec, clock, _ = world
    token = await codec.sign(_claims(clock, ttl=60))
    await codec.verify(token)
    clock.advance(seconds=3600)
    with pytest.raises(InvalidToken):
        await codec.verify(token)


async def test_a_cached_token_stops_when_its_key_is_retired(
    world: tuple[JwtAccessTokenCodec, FrozenClock, list[tokens.SigningKey]],
) -> None:
    codec, clock, keys = world
    token = await codec.sign(_claims(clock))
    await codec.verify(token)
    keys[0] = dataclasses.replace(keys[0], status="retired")
    with pytest.raises(InvalidToken, match="unknown_kid"):
        await codec.verify(token)


async def test_a_forged_signature_is_not_a_cache_hit(
    world: tuple[JwtAccessTokenCodec, FrozenClock, list[tokens.SigningKey]],
) -> None:
    codec, clock, _ = world
    token = await codec.sign(_claims(clock))
    await codec.verify(token)
    head, body, signature = token.split(".")
    forged = f"{head}.{body}.{signature[:-4]}AAAA"
    with pytest.raises(InvalidToken):
        await codec.verify(forged)


async def test_the_cache_is_bounded(
    world: tuple[JwtAccessTokenCodec, FrozenClock, list[tokens.SigningKey]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codec, clock, _ = world
    monkeypatch.setattr(tokens, "VERIFIED_CACHE_SIZE", 3)
    for n in range(5):
        claims = _claims(clock) | {"jti": f"tok_{n}"}
        await codec.verify(await codec.sign(claims))
    assert len(codec._verified) == 3


@pytest.mark.parametrize(
    "past_expiry", [0, tokens.VERIFY_LEEWAY_SECONDS, 1 + tokens.VERIFY_LEEWAY_SECONDS]
)
async def test_a_remembered_token_expires_at_the_second_a_fresh_check_would_say(
    world: tuple[JwtAccessTokenCodec, FrozenClock, list[tokens.SigningKey]],
    past_expiry: int,
) -> None:
    codec, clock, _ = world
    token = await codec.sign(_claims(clock, ttl=60))
    await codec.verify(token)
    clock.advance(seconds=60 + past_expiry)
    fresh = JwtAccessTokenCodec(codec._ring, issuer=ISSUER, audience=ISSUER, clock=clock)
    outcomes = []
    for verifying in (codec, fresh):
        try:
            await verifying.verify(token)
            outcomes.append("accepted")
        except InvalidToken:
            outcomes.append("refused")
    assert outcomes[0] == outcomes[1]
    assert outcomes[0] == ("refused" if past_expiry >= tokens.VERIFY_LEEWAY_SECONDS else "accepted")


async def test_a_token_refused_for_its_claims_is_refused_again_not_remembered(
    world: tuple[JwtAccessTokenCodec, FrozenClock, list[tokens.SigningKey]],
) -> None:
    codec, clock, _ = world
    wrong_audience = await codec.sign(_claims(clock) | {"aud": "http://elsewhere.test"})
    not_yet = await codec.sign(
        _claims(clock, ttl=3600) | {"nbf": int(clock.now().timestamp()) + 600}
    )
    for _ in range(2):
        with pytest.raises(InvalidToken):
            await codec.verify(wrong_audience)
        with pytest.raises(InvalidToken):
            await codec.verify(not_yet)
    clock.advance(seconds=600)
    assert (await codec.verify(not_yet))["client_id"] == "cli_1"
    assert [accepted for _, _, accepted in codec._verified.values()] == [False, True]

"""Rate limiting against a real Redis: separate API processes share one counter.

Uses ``AMANAT_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``); skipped when that
Redis does not answer. Every test works under its own key prefix and deletes it afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis
import redis.asyncio

from amanat.platform.http.ratelimit import Policy, RateLimiter, headers_for
from amanat.platform.ratelimit.limiter import LimiterLockout

REDIS_URL = os.environ.get("AMANAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SHARED = Policy("shared", 5, 60)
# Why 10 s: the default 0.5 s socket timeout fails open (allowed, uncounted) on a slow
# Redis reply from a busy machine, which these tests would read as a wrong count.
TIMEOUT = 10.0


def _redis_reachable() -> str | None:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return f"Redis at {REDIS_URL} is unreachable ({type(exc).__name__})"
    finally:
        client.close()
    return None


_UNREACHABLE = _redis_reachable()
pytestmark = pytest.mark.skipif(_UNREACHABLE is not None, reason=_UNREACHABLE or "")


@pytest.fixture
def prefix() -> str:
    return f"amanat-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def make_limiter(prefix: str) -> AsyncIterator[Callable[[], RateLimiter]]:
    """Build limiters as separate processes would: each with its own connection pool."""
    made: list[RateLimiter] = []

    def make() -> RateLimiter:
        limiter = RateLimiter(
            REDIS_URL, {"shared": SHARED}, key_prefix=prefix, timeout_seconds=TIMEOUT
        )
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.reset()
        await limiter.close()
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        assert await client.keys(f"{prefix}:*") == []
    finally:
        await client.aclose()


async def test_two_limiters_share_one_counter(make_limiter: Callable[[], RateLimiter]) -> None:
    api_1, api_2 = make_limiter(), make_limiter()
    assert api_1.storage_kind == "redis"
    decisions = []
    for i in range(7):
        limiter = api_1 if i % 2 == 0 else api_2
        decisions.append(await limiter.hit("shared", "client-1"))
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0, 0]
    assert not any(d.degraded for d in decisions)
    assert all(1 <= d.reset_seconds <= 60 for d in decisions)
    refused = headers_for(decisions[-1])
    assert refused["RateLimit-Policy"] == '"shared";q=5;w=60'
    assert int(refused["Retry-After"]) >= 1

    # Another client, and the same client under another prefix, are untouched.
    assert (await api_2.hit("shared", "client-2")).remaining == 4


async def test_keys_are_prefixed_hashed_and_expiring(
    make_limiter: Callable[[], RateLimiter], prefix: str
) -> None:
    limiter = make_limiter()
    await limiter.hit("shared", "ops@example.pk|203.0.113.7")
    client = redis.asyncio.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        keys = await client.keys(f"{prefix}:*")
        assert len(keys) == 1
        (key,) = keys
        assert key.startswith(f"{prefix}:ratelimit:shared/")
        assert "example.pk" not in key
        assert "203.0.113.7" not in key
        assert 0 < await client.ttl(key) <= 60
    finally:
        await client.aclose()


async def test_reset_only_clears_its_own_prefix(make_limiter: Callable[[], RateLimiter]) -> None:
    mine = make_limiter()
    theirs = RateLimiter(
        REDIS_URL,
        {"shared": SHARED},
        key_prefix=f"other-{uuid.uuid4().hex}",
        timeout_seconds=TIMEOUT,
    )
    try:
        await mine.hit("shared", "client-1")
        await theirs.hit("shared", "client-1")
        await mine.reset()
        assert (await mine.hit("shared", "client-1")).remaining == 4
        assert (await theirs.hit("shared", "client-1")).remaining == 3
    finally:
        await theirs.reset()
        await theirs.close()


async def test_a_partner_quota_and_a_peek_are_shared_too(
    make_limiter: Callable[[], RateLimiter],
) -> None:
    api_1, api_2 = make_limiter(), make_limiter()
    partner = Policy("shared", 2, 30)
    assert (await api_1.hit("shared", "client-1", override=partner)).remaining == 1
    peeked = await api_2.peek("shared", "client-1", override=partner)
    assert (peeked.allowed, peeked.remaining) == (True, 1)  # a peek counts nothing
    assert (await api_2.hit("shared", "client-1", override=partner)).remaining == 0
    assert not (await api_1.peek("shared", "client-1", override=partner)).allowed
    # The platform quota keeps its own counter.
    assert (await api_1.hit("shared", "client-1")).remaining == 4


async def test_unknown_email_lockout_is_shared_by_every_process(
    make_limiter: Callable[[], RateLimiter],
) -> None:
    api_1, api_2 = make_limiter(), make_limiter()
    lockouts = [LimiterLockout(api_1), LimiterLockout(api_2)]
    locked = [await lockouts[i % 2].record_failure("fp-1") for i in range(5)]
    assert locked == [False] * 4 + [True]
    assert await lockouts[0].is_locked("fp-1") and await lockouts[1].is_locked("fp-1")
    assert not await lockouts[1].is_locked("fp-2")

"""Rate limiting on the in-memory storage: counting, headers, keys, fail-open, wiring."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest
from fastapi import FastAPI, Request
from limits.errors import StorageError
from structlog.testing import capture_logs

from amanat.platform.http.errors import ApiProblem, install_error_handlers
from amanat.platform.http.middleware import ContractMiddleware
from amanat.platform.http.ratelimit import (
    DEFAULT_POLICIES,
    Decision,
    Policy,
    RateLimiter,
    enforce,
    headers_for,
)

TINY = Policy("tiny", 3, 60)
OTHER = Policy("other", 3, 60)


@pytest.fixture
def limiter() -> RateLimiter:
    return RateLimiter(None, {"tiny": TINY, "other": OTHER})


class FakeWallClock:
    """Replaces ``time.time`` (used by limits' memory storage and by the limiter)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, start: float = 1_000_000.0) -> None:
        self.now = start
        monkeypatch.setattr(time, "time", lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _request() -> Request:
    return Request({"type": "http", "method": "GET", "path": "/x", "headers": []})


# --- policies ------------------------------------------------------------------------------


def test_default_policies() -> None:
    assert {name: (p.limit, p.window_seconds) for name, p in DEFAULT_POLICIES.items()} == {
        "read": (6000, 60),
        "write": (6000, 60),
        "reveal": (30, 3600),
        "customer_search": (300, 3600),
        "token": (600, 60),
        "token_failures": (20, 300),
        "token_failures_ip": (200, 300),
        "login": (10, 300),
        "login_email_failures": (50, 900),
        "payee_check": (1000, 3600),
        "psu_sign_in_failures": (10, 900),
        "psu_sign_in_failures_ip": (50, 900),
        "public": (300, 60),
    }
    assert all(name == p.name for name, p in DEFAULT_POLICIES.items())


def test_overrides_merge_over_defaults() -> None:
    limiter = RateLimiter("memory://", {"token": Policy("token", 5, 10)})
    assert limiter.policies["token"] == Policy("token", 5, 10)
    assert limiter.policies["read"] == DEFAULT_POLICIES["read"]
    assert DEFAULT_POLICIES["token"].limit == 600
    assert limiter.storage_kind == "memory"


@pytest.mark.parametrize(
    ("name", "limit", "window"),
    [("", 1, 1), ('bad"name', 1, 1), ("a b", 1, 1), ("ok", 0, 1), ("ok", 1, 0)],
)
def test_policy_validation(name: str, limit: int, window: int) -> None:
    with pytest.raises(ValueError):
        Policy(name, limit, window)


def test_policy_key_must_match_name() -> None:
    with pytest.raises(ValueError, match="named"):
        RateLimiter(None, {"read": Policy("reads", 1, 1)})


async def test_unknown_policy_is_a_programming_error(limiter: RateLimiter) -> None:
    with pytest.raises(KeyError, match="nope"):
        await limiter.hit("nope", "client-1")


# --- counting ------------------------------------------------------------------------------


async def test_allows_up_to_the_limit_then_refuses(limiter: RateLimiter) -> None:
    decisions = [await limiter.hit("tiny", "client-1") for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert all(not d.degraded for d in decisions)


async def test_remaining_and_reset_follow_the_window(
    limiter: RateLimiter, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeWallClock(monkeypatch)
    first = await limiter.hit("tiny", "client-1")
    assert (first.remaining, first.reset_seconds) == (2, 60)
    clock.advance(20)
    second = await limiter.hit("tiny", "client-1")
    assert (second.remaining, second.reset_seconds) == (1, 40)
    clock.advance(10.5)
    third = await limiter.hit("tiny", "client-1")
    assert (third.allowed, third.remaining, third.reset_seconds) == (True, 0, 30)
    refused = await limiter.hit("tiny", "client-1")
    assert (refused.allowed, refused.remaining, refused.reset_seconds) == (False, 0, 30)
    # The window opened at the first hit; once it is over the budget is whole again.
    clock.advance(30)
    fresh = await limiter.hit("tiny", "client-1")
    assert (fresh.allowed, fresh.remaining, fresh.reset_seconds) == (True, 2, 60)


async def test_keys_are_independent_per_client_and_per_policy(limiter: RateLimiter) -> None:
    for _ in range(3):
        assert (await limiter.hit("tiny", "client-1")).allowed
    assert not (await limiter.hit("tiny", "client-1")).allowed
    other_client = await limiter.hit("tiny", "client-2")
    assert (other_client.allowed, other_client.remaining) == (True, 2)
    other_policy = await limiter.hit("other", "client-1")
    assert (other_policy.allowed, other_policy.remaining) == (True, 2)


async def test_reset_forgets_counters(limiter: RateLimiter) -> None:
    for _ in range(4):
        await limiter.hit("tiny", "client-1")
    await limiter.reset()
    decision = await limiter.hit("tiny", "client-1")
    assert (decision.allowed, decision.remaining) == (True, 2)
    await limiter.close()


# --- headers -------------------------------------------------------------------------------


def test_headers_exact_syntax_when_allowed() -> None:
    decision = Decision(
        allowed=True, policy=Policy("token", 30, 60), remaining=29, reset_seconds=60
    )
    assert headers_for(decision) == {
        "RateLimit-Policy": '"token";q=30;w=60',
        "RateLimit": '"token";r=29;t=60',
    }


def test_headers_exact_syntax_when_refused() -> None:
    decision = Decision(
        allowed=False, policy=Policy("login", 10, 300), remaining=0, reset_seconds=42
    )
    assert headers_for(decision) == {
        "RateLimit-Policy": '"login";q=10;w=300',
        "RateLimit": '"login";r=0;t=42',
        "Retry-After": "42",
    }


def test_retry_after_is_at_least_one_second() -> None:
    decision = Decision(allowed=False, policy=TINY, remaining=0, reset_seconds=0)
    assert headers_for(decision)["Retry-After"] == "1"


async def test_headers_from_real_hits_are_well_formed(limiter: RateLimiter) -> None:
    for _ in range(3):
        await limiter.hit("tiny", "client-1")
    headers = headers_for(await limiter.hit("tiny", "client-1"))
    assert headers["RateLimit-Policy"] == '"tiny";q=3;w=60'
    match = re.fullmatch(r'"tiny";r=0;t=(\d+)', headers["RateLimit"])
    assert match is not None
    assert 1 <= int(headers["Retry-After"]) <= 60
    assert int(headers["Retry-After"]) >= int(match.group(1))


# --- fail-open -----------------------------------------------------------------------------


async def test_unreachable_redis_fails_open_and_warns() -> None:
    limiter = RateLimiter(
        "async+redis://127.0.0.1:1/0", {"tiny": TINY}, timeout_seconds=0.2, key_prefix="t"
    )
    assert limiter.storage_kind == "redis"
    try:
        with capture_logs() as logs:
            # wait_for only guards against a hang; nothing here asserts on duration.
            decisions = [
                await asyncio.wait_for(limiter.hit("tiny", "client-1"), timeout=10)
                for _ in range(5)
            ]
        assert all(d.allowed and d.degraded for d in decisions)
        warnings = [e for e in logs if e["event"] == "rate_limit_storage_unavailable"]
        # One warning for the failure; later hits skip the store during the cooldown.
        assert len(warnings) == 1
        assert warnings[0]["log_level"] == "warning"
        assert warnings[0]["policy"] == "tiny"
        assert "127.0.0.1" not in str(warnings[0])
        assert headers_for(decisions[0]) == {"RateLimit-Policy": '"tiny";q=3;w=60'}
    finally:
        await limiter.close()


async def test_storage_error_fails_open(
    limiter: RateLimiter, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0

    async def broken(*_: object, **__: object) -> int:
        nonlocal calls
        calls += 1
        raise StorageError(ConnectionError("down"))

    monkeypatch.setattr(limiter._storage, "incr", broken)
    with capture_logs() as logs:
        first = await limiter.hit("tiny", "client-1")
        second = await limiter.hit("tiny", "client-1")
    assert [(d.allowed, d.degraded) for d in (first, second)] == [(True, True)] * 2
    assert calls == 1
    assert [e["error"] for e in logs] == ["ConnectionError"]
    # reset() closes the breaker, so the store is asked again.
    monkeypatch.undo()
    await limiter.reset()
    assert not (await limiter.hit("tiny", "client-1")).degraded


# --- enforce + middleware ------------------------------------------------------------------


async def test_enforce_records_headers_and_raises_429(limiter: RateLimiter) -> None:
    request = _request()
    for remaining in (2, 1, 0):
        await enforce(request, limiter, "tiny", "client-1")
        assert request.state.ratelimit_headers["RateLimit"].startswith(f'"tiny";r={remaining};')
    with pytest.raises(ApiProblem) as caught:
        await enforce(request, limiter, "tiny", "client-1")
    problem = caught.value
    assert (problem.code, problem.status) == ("rate_limited", 429)
    assert problem.headers == request.state.ratelimit_headers
    assert problem.headers["RateLimit-Policy"] == '"tiny";q=3;w=60'
    assert int(problem.headers["Retry-After"]) >= 1


async def test_enforce_merges_several_policies_as_one_list(limiter: RateLimiter) -> None:
    request = _request()
    await enforce(request, limiter, "tiny", "ip-1")
    await enforce(request, limiter, "other", "client-1")
    await enforce(request, limiter, "other", "client-1")
    headers = request.state.ratelimit_headers
    assert headers["RateLimit-Policy"] == '"tiny";q=3;w=60, "other";q=3;w=60'
    assert re.fullmatch(r'"tiny";r=2;t=\d+, "other";r=1;t=\d+', headers["RateLimit"])


async def test_middleware_adds_headers_once(limiter: RateLimiter) -> None:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(ContractMiddleware, max_body_bytes=1024)

    @app.get("/v1/thing")
    async def thing(request: Request) -> dict[str, str]:
        await enforce(request, limiter, "tiny", "client-1")
        return {"ok": "yes"}

    @app.get("/v1/unlimited")
    async def unlimited() -> dict[str, str]:
        return {"ok": "yes"}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        responses = [await client.get("/v1/thing") for _ in range(4)]
        plain = await client.get("/v1/unlimited")

    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    ok, refused = responses[0], responses[3]
    assert ok.headers.get_list("ratelimit-policy") == ['"tiny";q=3;w=60']
    assert re.fullmatch(r'"tiny";r=2;t=\d+', ok.headers["ratelimit"])
    assert "retry-after" not in ok.headers
    for name in ("ratelimit-policy", "ratelimit", "retry-after", "x-request-id"):
        assert len(refused.headers.get_list(name)) == 1, name
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    assert "ratelimit" not in plain.headers

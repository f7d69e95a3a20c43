"""Per-client, per-endpoint-class rate limiting on top of :mod:`limits` (async API).

Each endpoint class has a :class:`Policy` (``read``, ``write``, ``reveal``,
``customer_search``, ``token``,
``token_failures``, ``token_failures_ip``, ``login``, ``public``), each quota settable with
``AMANAT_RATE_LIMITS__<POLICY>=LIMIT/WINDOW_SECONDS`` and, for ``read`` and ``write``, per
partner by an operator; the caller chooses the key (client id, client id+IP, IP, IP+email).
Counters live in the storage named by a URI: ``memory://`` (one process, the default) or Redis
(``redis://host:port/db`` or ``async+redis://host:port/db``), which every API process
shares, so a client's budget is one budget however many workers serve it. Redis is reached
through redis-py's asyncio client (``implementation="redispy"``); limits' own default for
``async+redis://`` is :pypi:`coredis`, which this project does not install.

The strategy is a fixed window that opens at a key's first hit (one ``INCR`` + ``EXPIRE``
per hit): O(1) per request and per key, at the price of allowing up to twice the quota in
a burst straddling two windows. The endpoints where that matters are guarded otherwise too:
operator sign-in by lockout and argon2's cost, the token endpoint by client secrets of 256
random bits, which no number of guesses finds.

Responses advertise the policy and the live counter in the form of
draft-ietf-httpapi-ratelimit-headers-11 (May 2026), both fields being Structured Field
Lists of one String item with Integer parameters::

    RateLimit-Policy: "token";q=600;w=60
    RateLimit: "token";r=599;t=60

and a refused request also carries ``Retry-After`` (delay-seconds, at least 1, never
earlier than the end of the effective window).
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import structlog
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import Storage
from limits.errors import StorageError
from limits.storage import storage_from_string
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from amanat.platform.ratelimit.memory_storage import SweptMemoryStorage
from amanat.platform.ratelimit.names import LOCKOUT, MAX_FAILED_LOGINS, PARTNER_RATE_LIMIT_POLICIES

log = structlog.get_logger("amanat.ratelimit")

_POLICY_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True, slots=True)
class Policy:
    """``limit`` requests per ``window_seconds`` for one class of endpoints."""

    name: str
    limit: int
    window_seconds: int

    def __post_init__(self) -> None:
        # The name is sent as a Structured Field String, so keep it to plain characters.
        if not _POLICY_NAME.fullmatch(self.name):
            raise ValueError(f"policy name must match {_POLICY_NAME.pattern}: {self.name!r}")
        if self.limit < 1:
            raise ValueError(f"policy {self.name!r}: limit must be at least 1")
        if self.window_seconds < 1:
            raise ValueError(f"policy {self.name!r}: window_seconds must be at least 1")


_POLICY_TEXT = re.compile(r"\s*([0-9]{1,10})\s*/\s*([0-9]{1,7})\s*")


def parse_policy(name: str, text: str) -> Policy:
    """``"6000/60"`` (LIMIT/WINDOW_SECONDS) as the policy ``name``; ValueError otherwise."""
    match = _POLICY_TEXT.fullmatch(text)
    if match is None:
        raise ValueError(
            f"rate limit {name!r} must be LIMIT/WINDOW_SECONDS, e.g. 6000/60; got {text[:40]!r}"
        )
    return Policy(name, int(match.group(1)), int(match.group(2)))


# Defaults sized for a real partner (a 10,000-salary payroll in under two minutes), at
# 100 requests a second per client, the figure Stripe publishes for live mode. Every one
# can be changed with AMANAT_RATE_LIMITS__<POLICY>=LIMIT/WINDOW_SECONDS (docs/rate-limits.md).
DEFAULT_POLICIES: dict[str, Policy] = {
    # Authenticated partner reads, per client id.
    "read": Policy("read", 6000, 60),
    # Authenticated partner writes (payments, consents…), per client id.
    "write": Policy("write", 6000, 60),
    # Reading a customer's identifiers in clear, per client id: support look-ups, not bulk
    # export, so a stolen token cannot walk the customer table.
    "reveal": Policy("reveal", 30, 3600),
    # Finding customers by IBAN, Raast ID or CNIC, per client id: a search confirms a
    # guessed identifier (a masked Raast ID hides only five digits), so guesses are few.
    "customer_search": Policy("customer_search", 300, 3600),
    # Token, revoke and introspect requests, per (client id, source IP).
    "token": Policy("token", 600, 60),
    # Failed client authentications, per (client id, source IP): a guesser locks out only
    # itself, never the client it does not hold the secret of, elsewhere.
    "token_failures": Policy("token_failures", 20, 300),
    # Failed client authentications per source IP, whatever client id they name, so
    # invented client ids do not each get a fresh budget.
    "token_failures_ip": Policy("token_failures_ip", 200, 300),
    # Operator login, per IP + email.
    "login": Policy("login", 10, 300),
    # Failed operator sign-ins at one email from every address together. Past it, an
    # address is locked out at its first failure rather than its fifth: a guesser spread
    # over many addresses is slowed, while the right password and code still sign in.
    "login_email_failures": Policy("login_email_failures", 50, 900),
    # Confirmation of payee, per client: each check tells whether a name goes with an
    # account, so a client checks what it pays, not a directory's worth.
    "payee_check": Policy("payee_check", 1000, 3600),
    # A bank customer's failed sign-ins and one-time codes in the hosted consent pages, per
    # username (or customer), from every address and every walk together: past it the
    # customer is locked out for the window, however many walks a guesser starts.
    "psu_sign_in_failures": Policy("psu_sign_in_failures", 10, 900),
    # The same failures per source IP, whatever username they name.
    "psu_sign_in_failures_ip": Policy("psu_sign_in_failures_ip", 50, 900),
    # Unauthenticated reference data, per IP.
    "public": Policy("public", 300, 60),
}

# Policies a partner-specific override may replace (the partner is known on those only).
PARTNER_POLICIES: Final = PARTNER_RATE_LIMIT_POLICIES


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one hit.

    ``degraded`` is true when the counter store could not be consulted and the request was
    let through without counting; ``remaining`` and ``reset_seconds`` are then only the
    policy's nominal values and are not advertised.
    """

    allowed: bool
    policy: Policy
    remaining: int
    reset_seconds: int
    degraded: bool = False


_REDIS_SCHEMES: Final = frozenset(
    {"redis", "rediss", "redis+unix", "redis+sentinel", "redis+cluster"}
)


def _async_uri(storage_uri: str | None) -> str:
    uri = storage_uri or "memory://"
    scheme = urlsplit(uri).scheme
    return uri if scheme.startswith("async+") else f"async+{uri}"


class RateLimiter:
    """Counts hits per (policy, key) in the configured storage.

    If the counter store (Redis) is unreachable or times out, the limiter fails OPEN: the
    request is allowed, uncounted, and a warning is logged. An outage of a cache-like
    dependency must not take the payment API down with it; the abuse-sensitive paths do
    not rely on this layer alone (operator sign-in is also throttled by account lockout and
    made expensive by argon2 hashing; client secrets carry 256 random bits). Socket
    timeouts are short and, after a failure, the store is not asked again for
    ``failure_cooldown_seconds``, so an outage costs at most one slow request per cooldown
    rather than a timeout on every request.
    """

    def __init__(
        self,
        storage_uri: str | None,
        policies: dict[str, Policy] | None = None,
        key_prefix: str = "amanat",
        *,
        timeout_seconds: float = 0.5,
        failure_cooldown_seconds: float = 5.0,
    ) -> None:
        """``policies`` are merged over :data:`DEFAULT_POLICIES` (same name replaces)."""
        merged = {**DEFAULT_POLICIES, **(policies or {})}
        for name, policy in merged.items():
            if name != policy.name:
                raise ValueError(f"policy registered as {name!r} is named {policy.name!r}")
        self.policies: dict[str, Policy] = merged
        self._items: dict[Policy, RateLimitItem] = {}
        uri = _async_uri(storage_uri)
        scheme = urlsplit(uri).scheme.removeprefix("async+")
        options: dict[str, Any] = {"wrap_exceptions": True}
        if scheme in _REDIS_SCHEMES:
            options.update(
                implementation="redispy",
                key_prefix=f"{key_prefix}:ratelimit",
                socket_connect_timeout=timeout_seconds,
                socket_timeout=timeout_seconds,
                # One immediate retry for a dropped pooled connection, no backoff sleeps.
                retry=Retry(NoBackoff(), retries=1),
            )
        storage = (
            SweptMemoryStorage(wrap_exceptions=True)
            if scheme == "memory"
            else storage_from_string(uri, **options)
        )
        if not isinstance(storage, Storage):  # pragma: no cover - guarded by the scheme
            raise ValueError(f"not an async rate-limit storage: {uri}")
        self._storage: Storage = storage
        self._scheme = scheme
        self._cooldown = failure_cooldown_seconds
        self._skip_until = 0.0

    @property
    def storage_kind(self) -> str:
        """The storage scheme without ``async+`` (``memory``, ``redis``…); never the URI."""
        return self._scheme

    def _item(self, policy: Policy) -> RateLimitItem:
        # The counter key holds the quota and window, so a changed override starts afresh.
        item = self._items.get(policy)
        if item is None:
            item = RateLimitItemPerSecond(
                policy.limit, policy.window_seconds, namespace=policy.name
            )
            self._items[policy] = item
        return item

    def _policy(self, policy_name: str, override: Policy | None) -> Policy:
        if override is not None:
            if override.name != policy_name:
                raise ValueError(f"override {override.name!r} given for {policy_name!r}")
            return override
        policy = self.policies.get(policy_name)
        if policy is None:
            raise KeyError(f"unknown rate-limit policy {policy_name!r}")
        return policy

    async def hit(self, policy_name: str, key: str, *, override: Policy | None = None) -> Decision:
        """Count one request by ``key`` against ``policy_name`` and decide on it.

        ``override`` replaces the configured quota for this hit (a partner's own quota).
        """
        return await self._decide(self._policy(policy_name, override), key, count=True)

    async def peek(self, policy_name: str, key: str, *, override: Policy | None = None) -> Decision:
        """Whether ``key`` may still be counted against ``policy_name``, without counting."""
        return await self._decide(self._policy(policy_name, override), key, count=False)

    async def _decide(self, policy: Policy, key: str, *, count: bool) -> Decision:
        if time.monotonic() < self._skip_until:
            return self._fail_open(policy)
        policy_name = policy.name
        item = self._item(policy)
        # Keys can hold emails or IPs: store a digest, never the raw value, at a fixed length.
        digest = hashlib.blake2b(key.encode("utf-8"), digest_size=16).hexdigest()
        counter = item.key_for(digest)
        try:
            # The fixed window's own rules (limits' FixedWindowRateLimiter), asked of the
            # storage in two calls instead of its three: the count an increment returns is
            # the one to decide on and to advertise, so no second read of it (on Redis, one
            # round trip fewer per request).
            if count:
                counted = await self._storage.incr(counter, item.get_expiry())
                allowed = counted <= item.amount
            else:
                counted = await self._storage.get(counter)
                allowed = counted < item.amount
            reset_at = await self._storage.get_expiry(counter)
        except (StorageError, OSError, TimeoutError) as exc:
            self._skip_until = time.monotonic() + self._cooldown
            cause = exc.storage_error if isinstance(exc, StorageError) else exc
            log.warning(
                "rate_limit_storage_unavailable",
                policy=policy_name,
                storage=self.storage_kind,
                error=type(cause).__name__,
                fail_open_seconds=self._cooldown,
            )
            return self._fail_open(policy)
        reset = math.ceil(reset_at - time.time())
        return Decision(
            allowed=allowed,
            policy=policy,
            remaining=max(0, item.amount - counted),
            reset_seconds=max(0, min(policy.window_seconds, reset)),
        )

    @staticmethod
    def _fail_open(policy: Policy) -> Decision:
        return Decision(
            allowed=True,
            policy=policy,
            remaining=policy.limit,
            reset_seconds=policy.window_seconds,
            degraded=True,
        )

    async def reset(self) -> None:
        """Forget every counter under this limiter's prefix (tests and operations)."""
        await self._storage.reset()
        self._skip_until = 0.0

    async def close(self) -> None:
        """Release the Redis connection pool, if any."""
        bridge = getattr(self._storage, "bridge", None)
        client = getattr(bridge, "storage", None)
        aclose = getattr(client, "aclose", None)
        if aclose is not None:
            await aclose()


# Failed operator sign-ins per (email, source IP), whether the email has an account or
# not: MAX_FAILED_LOGINS failures lock that address out of that email for the LOCKOUT
# period. Keyed by address so a guesser locks out only itself, never the operator
# elsewhere; the same for unknown emails, so a 423 does not tell which exist.
SIGN_IN_LOCKOUT = Policy("login_lockout", MAX_FAILED_LOGINS, int(LOCKOUT.total_seconds()))


class LimiterLockout:
    """:class:`~amanat.platform.db.ports.FailureLockout` on a rate-limit policy's counters
    (shared by every API process when the limiter uses Redis). If the store is down the
    lockout fails open, like the limiter: never locked."""

    def __init__(self, limiter: RateLimiter, policy: Policy | str = SIGN_IN_LOCKOUT) -> None:
        """``policy`` is a fixed Policy, or the name of one of the limiter's (configurable)."""
        self._limiter = limiter
        self._policy = policy

    def _current(self) -> Policy:
        policy = self._policy
        return self._limiter.policies[policy] if isinstance(policy, str) else policy

    async def is_locked(self, key: str) -> bool:
        policy = self._current()
        decision = await self._limiter.peek(policy.name, key, override=policy)
        return not decision.allowed

    async def record_failure(self, key: str) -> bool:
        policy = self._current()
        decision = await self._limiter.hit(policy.name, key, override=policy)
        return not decision.degraded and (not decision.allowed or decision.remaining == 0)

    async def lock(self, key: str) -> None:
        policy = self._current()
        for _ in range(policy.limit):
            decision = await self._limiter.hit(policy.name, key, override=policy)
            if decision.degraded or not decision.allowed or decision.remaining == 0:
                return

    async def seconds_left(self, key: str) -> int:
        policy = self._current()
        decision = await self._limiter.peek(policy.name, key, override=policy)
        return max(1, decision.reset_seconds)

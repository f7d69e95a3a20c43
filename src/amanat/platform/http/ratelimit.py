"""Rate limiting at the HTTP edge: enforce a policy and publish its headers.

The counters and policies live in :mod:`amanat.platform.ratelimit.limiter`; this module turns a
decision into ``RateLimit-Policy``/``RateLimit`` headers and a 429 problem.
"""

from __future__ import annotations

from starlette.requests import Request

from amanat.platform.http.errors import ApiProblem
from amanat.platform.ratelimit.limiter import (
    DEFAULT_POLICIES,
    PARTNER_POLICIES,
    Decision,
    Policy,
    RateLimiter,
    parse_policy,
)

__all__ = [
    "DEFAULT_POLICIES",
    "PARTNER_POLICIES",
    "Decision",
    "Policy",
    "RateLimiter",
    "enforce",
    "headers_for",
    "parse_policy",
    "refuse_if_exhausted",
]


def headers_for(decision: Decision) -> dict[str, str]:
    """The draft-11 ``RateLimit-Policy``/``RateLimit`` fields (+ ``Retry-After`` if refused).

    A degraded (fail-open) decision advertises the policy only: its counter is unknown.
    """
    p = decision.policy
    headers = {"RateLimit-Policy": f'"{p.name}";q={p.limit};w={p.window_seconds}'}
    if not decision.degraded:
        headers["RateLimit"] = f'"{p.name}";r={decision.remaining};t={decision.reset_seconds}'
    if not decision.allowed:
        headers["Retry-After"] = str(max(1, decision.reset_seconds))
    return headers


def _merge(existing: dict[str, str], new: dict[str, str]) -> dict[str, str]:
    """Several policies on one request: both fields are SF Lists, one item per policy."""
    merged = dict(existing)
    for name, value in new.items():
        if name not in merged:
            merged[name] = value
        elif name == "Retry-After":
            merged[name] = str(max(int(merged[name]), int(value)))
        else:
            policy = value.split(";", 1)[0]
            kept = [i for i in merged[name].split(", ") if i.split(";", 1)[0] != policy]
            merged[name] = ", ".join([*kept, value])
    return merged


async def enforce(
    request: Request,
    limiter: RateLimiter,
    policy_name: str,
    key: str,
    *,
    override: Policy | None = None,
) -> None:
    """Count the request; record the headers for the response; answer 429 when refused.

    ``override`` is a partner's own quota for the policy; the headers then advertise it.
    The headers go to ``request.state.ratelimit_headers``, which the contract middleware
    adds to whatever response is eventually sent.
    """
    _apply(request, await limiter.hit(policy_name, key, override=override))


async def refuse_if_exhausted(
    request: Request, limiter: RateLimiter, policy_name: str, key: str
) -> None:
    """Answer 429 if ``key`` has used up ``policy_name``, without counting this request.

    For budgets that only some outcomes spend (failed authentications): the request is
    checked before it is served and counted afterwards only if it failed.
    """
    decision = await limiter.peek(policy_name, key)
    if not decision.allowed:
        _apply(request, decision)


def _apply(request: Request, decision: Decision) -> None:
    existing: dict[str, str] = getattr(request.state, "ratelimit_headers", None) or {}
    headers = _merge(existing, headers_for(decision))
    request.state.ratelimit_headers = headers
    if not decision.allowed:
        policy = decision.policy
        raise ApiProblem(
            "rate_limited",
            detail=(
                f"Rate limit '{policy.name}' ({policy.limit} requests per "
                f"{policy.window_seconds} s) exceeded; retry in {headers['Retry-After']} s."
            ),
            status=429,
            headers=headers,
        )

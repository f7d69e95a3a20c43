"""Webhook rules: the retry schedule, what a receiver's answer means, when an endpoint is
disabled, and which addresses and URLs are refused."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook

from amanat.webhooks.domain.endpoints import (
    MAX_ATTEMPTS,
    MAX_RETRY_AFTER,
    RETRY_SCHEDULE,
    SECRET_PREFIX,
    UrlRefused,
    Verdict,
    WebhookEndpoint,
    check_url,
    forbidden_address,
    format_secret,
    honours_retry_after,
    host_of,
    next_attempt_delay,
    should_disable,
    verdict,
)
from amanat.webhooks.service import _jitter

JITTER_LOW, JITTER_HIGH = 0.8, 1.2
NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)

jitters = st.floats(min_value=JITTER_LOW, max_value=JITTER_HIGH)
attempts_made = st.integers(min_value=1, max_value=MAX_ATTEMPTS - 1)
retry_afters = st.none() | st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400))


# -- the schedule -----------------------------------------------------------------------


def test_the_schedule_is_the_standard_webhooks_example() -> None:
    assert [d.total_seconds() for d in RETRY_SCHEDULE] == [
        0,
        5,
        300,
        1800,
        7200,
        18000,
        36000,
        50400,
        72000,
        86400,
    ]


def delays(jitter: float) -> list[timedelta]:
    """The waits between attempts until the schedule gives up."""
    found: list[timedelta] = []
    made = 1  # the first attempt is immediate
    while (delay := next_attempt_delay(made, jitter=jitter)) is not None:
        found.append(delay)
        made += 1
    return found


@pytest.mark.parametrize("jitter", [JITTER_LOW, 1.0, JITTER_HIGH])
def test_retries_cover_at_least_a_day_and_then_give_up(jitter: float) -> None:
    waits = delays(jitter)
    assert len(waits) == MAX_ATTEMPTS - 1, "one immediate attempt plus the retries"
    assert sum(waits, timedelta(0)) >= timedelta(hours=24)
    assert waits == sorted(waits), "backoff never shrinks"
    assert waits[0] == timedelta(seconds=5) * jitter


def test_the_first_retry_is_five_seconds_and_the_last_gives_up() -> None:
    assert next_attempt_delay(1, jitter=1.0) == timedelta(seconds=5)
    assert next_attempt_delay(MAX_ATTEMPTS - 1, jitter=1.0) == timedelta(hours=24)
    assert next_attempt_delay(MAX_ATTEMPTS, jitter=1.0) is None
    assert next_attempt_delay(MAX_ATTEMPTS + 5, jitter=1.0) is None
    # Retry-After never extends a schedule that has run out.
    assert next_attempt_delay(MAX_ATTEMPTS, jitter=1.0, retry_after=timedelta(1)) is None


@given(attempts_made, jitters)
def test_jitter_stays_within_its_bounds(made: int, jitter: float) -> None:
    delay = next_attempt_delay(made, jitter=jitter)
    assert delay is not None
    base = RETRY_SCHEDULE[made]
    assert base * JITTER_LOW <= delay <= base * JITTER_HIGH


def test_the_service_draws_jitter_in_bounds_and_not_constant() -> None:
    drawn = [_jitter() for _ in range(500)]
    assert all(JITTER_LOW <= j <= JITTER_HIGH for j in drawn)
    assert len(set(drawn)) > 100, "many deliveries failing together must spread out"


def test_retry_after_is_honoured_but_capped() -> None:
    # Longer than the schedule: the receiver's wish wins.
    assert next_attempt_delay(1, jitter=1.0, retry_after=timedelta(seconds=120)) == timedelta(
        seconds=120
    )
    # Shorter than the schedule: the schedule wins (Retry-After only ever slows us down).
    assert next_attempt_delay(3, jitter=1.0, retry_after=timedelta(seconds=1)) == timedelta(
        minutes=30
    )
    # Absurdly long: capped.
    assert next_attempt_delay(1, jitter=1.0, retry_after=timedelta(days=30)) == MAX_RETRY_AFTER


@given(attempts_made, jitters, retry_afters)
def test_delays_are_never_negative_nor_beyond_the_cap(
    made: int, jitter: float, retry_after: timedelta | None
) -> None:
    delay = next_attempt_delay(made, jitter=jitter, retry_after=retry_after)
    assert delay is not None
    assert delay >= timedelta(0)
    assert delay <= max(RETRY_SCHEDULE[made] * JITTER_HIGH, MAX_RETRY_AFTER)
    if retry_after is not None:
        assert delay >= min(retry_after, MAX_RETRY_AFTER)


# -- what an answer means ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, Verdict.DELIVERED),
        (204, Verdict.DELIVERED),
        (299, Verdict.DELIVERED),
        (199, Verdict.RETRY),
        (300, Verdict.RETRY),
        (301, Verdict.RETRY),
        (302, Verdict.RETRY),
        (400, Verdict.RETRY),
        (404, Verdict.RETRY),
        (410, Verdict.GONE),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (503, Verdict.RETRY),
        (None, Verdict.RETRY),
    ],
)
def test_verdicts(status: int | None, expected: Verdict) -> None:
    assert verdict(status) is expected


@pytest.mark.parametrize(
    ("status", "honoured"),
    [(429, True), (502, True), (503, True), (504, True), (500, False), (410, False), (None, False)],
)
def test_which_answers_may_slow_us_down(status: int | None, honoured: bool) -> None:
    assert honours_retry_after(status) is honoured


def test_should_disable_after_a_streak() -> None:
    five_days = timedelta(days=5)
    assert not should_disable(None, NOW, five_days)
    assert not should_disable(NOW, NOW, five_days)
    assert not should_disable(NOW - five_days + timedelta(seconds=1), NOW, five_days)
    assert should_disable(NOW - five_days, NOW, five_days)
    assert should_disable(NOW - timedelta(days=30), NOW, five_days)


# -- secrets ----------------------------------------------------------------------------


def test_secrets_have_the_standard_webhooks_form() -> None:
    key = bytes(range(32))
    secret = format_secret(key)
    assert secret.startswith(SECRET_PREFIX)
    assert base64.b64decode(secret.removeprefix(SECRET_PREFIX)) == key
    Webhook(secret)  # the reference library accepts it


def test_the_previous_secret_signs_only_until_it_expires() -> None:
    endpoint = WebhookEndpoint(
        id="we_1",
        partner_id="ptr_1",
        url="https://example.pk/hooks",
        description=None,
        enabled_events=("payment.succeeded",),
        enabled=True,
        disabled_reason=None,
        secret="sealed-new",
        previous_secret="sealed-old",
        previous_secret_expires_at=NOW + timedelta(hours=1),
        failing_since=None,
        version=2,
        created_at=NOW,
        updated_at=NOW,
    )
    assert endpoint.signs_with_previous(NOW)
    assert not endpoint.signs_with_previous(NOW + timedelta(hours=1))
    assert endpoint.wants("payment.succeeded")
    assert not endpoint.wants("payment.failed")
    from dataclasses import replace

    assert replace(endpoint, enabled_events=("*",)).wants("payment.failed")
    assert not replace(endpoint, enabled=False).wants("payment.succeeded")


# -- where we may send ------------------------------------------------------------------

FORBIDDEN = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",  # noqa: S104 - an address to refuse, not to bind
    "::1",
    "fe80::1",
    "fd00::1",
    "::ffff:127.0.0.1",
    "224.0.0.1",
    "255.255.255.255",
    "::",
    "ff02::1",
    "::ffff:169.254.169.254",
    # IPv6 forms that carry a private IPv4 address through a translator or tunnel.
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b:1::1",  # local-use NAT64
    "::127.0.0.1",  # IPv4-compatible
]
ALLOWED = [
    "8.8.8.8",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
]


@pytest.mark.parametrize("address", FORBIDDEN)
def test_non_public_addresses_are_forbidden(address: str) -> None:
    assert forbidden_address(address)


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    assert not forbidden_address(address)


def test_a_name_is_not_an_address() -> None:
    with pytest.raises(ValueError):
        forbidden_address("example.pk")


@given(st.ip_addresses(v=4))
def test_a_mapped_ipv4_address_is_judged_like_the_address(ip: object) -> None:
    assert forbidden_address(f"::ffff:{ip}") == forbidden_address(str(ip))


@pytest.mark.parametrize(
    "url",
    [
        "https://example.pk/hooks",
        "https://hooks.example.pk:8443/a?b=c",
        "https://8.8.8.8/hooks",
        "https://[2606:4700:4700::1111]/hooks",
    ],
)
def test_production_accepts_public_https(url: str) -> None:
    check_url(url, production=True)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://example.pk/hooks", "https_required"),
        ("https://localhost/hooks", "private_address"),
        ("https://LOCALHOST./hooks", "private_address"),
        ("https://api.localhost/hooks", "private_address"),
        ("https://metadata.google.internal/computeMetadata", "private_address"),
        ("https://printer.local/", "private_address"),
        ("https://127.0.0.1/hooks", "private_address"),
        ("https://169.254.169.254/latest/meta-data", "private_address"),
        ("https://10.0.0.5:8443/hooks", "private_address"),
        ("https://[::1]/hooks", "private_address"),
        ("https://[::ffff:127.0.0.1]/hooks", "private_address"),
        ("https://[fd00::1]/hooks", "private_address"),
        ("https://user:pw@example.pk/hooks", "credentials"),
        ("https://example.pk:99999/hooks", "bad_port"),
        ("ftp://example.pk/hooks", "not_http"),
        ("/relative/hooks", "not_http"),
        ("https:///hooks", "not_http"),
        ("https://example.pk/" + "a" * 2100, "too_long"),
    ],
)
def test_production_refuses(url: str, reason: str) -> None:
    with pytest.raises(UrlRefused) as caught:
        check_url(url, production=True)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:9000/",
        "http://127.0.0.1:8080/hooks",
        "http://10.0.0.5/hooks",
        "https://example.pk/hooks",
        "http://[::1]:9000/",
    ],
)
def test_the_sandbox_accepts_local_http(url: str) -> None:
    check_url(url, production=False)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://localhost/", "not_http"),
        ("http://user:pw@localhost/", "credentials"),
        ("http://localhost:70000/", "bad_port"),
        ("javascript:alert(1)", "not_http"),
    ],
)
def test_the_sandbox_still_refuses_what_is_not_a_plain_http_url(url: str, reason: str) -> None:
    with pytest.raises(UrlRefused) as caught:
        check_url(url, production=False)
    assert caught.value.reason == reason


def test_host_of_normalises() -> None:
    assert host_of("https://Hooks.Example.PK.:8443/x") == "hooks.example.pk"
    assert host_of("https://[::1]:8443/x") == "::1"

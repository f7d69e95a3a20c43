"""The token check's cache: served only while the change feed is live and primed, never
a value read before a change it may have missed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta

from amanat.auth.access_cache import ACCESS, FORGET_AFTER_SECONDS, REVOKED, AccessCache
from amanat.identity.access import PartnerRole
from amanat.identity.domain import ClientAuthMethod, Mode, OAuthClient, Partner
from amanat.kernel.clock import FrozenClock


class FakeFeed:
    def __init__(self) -> None:
        self.live = False
        self.started = 0
        self._epochs: dict[str, int] = defaultdict(int)
        self._handlers: dict[str, list[Callable[[str], None]]] = defaultdict(list)

    def epoch(self, topic: str) -> int:
        return self._epochs[topic]

    def subscribe(self, topic: str, handler: Callable[[str], None]) -> None:
        self._handlers[topic].append(handler)

    def start(self) -> None:
        self.started += 1

    def notify(self, topic: str, key: str) -> None:
        self._epochs[topic] += 1
        for handler in self._handlers[topic]:
            handler(key)

    def connect(self, live: bool = True) -> None:
        self.live = live
        for topic, handlers in self._handlers.items():
            self._epochs[topic] += 1
            for handler in handlers:
                handler("")


CLOCK = FrozenClock()
PARTNER = Partner(
    id="par_1",
    name="Shop",
    roles=frozenset({PartnerRole.MERCHANT}),
    mode=Mode.SANDBOX,
    status="active",
    created_at=CLOCK.now(),
    updated_at=CLOCK.now(),
)
CLIENT = OAuthClient(
    id="cli_1",
    partner_id="par_1",
    name="Shop client",
    auth_method=ClientAuthMethod.SECRET_BASIC,
    secret_hash="x",
    jwks=None,
    jwks_uri=None,
    redirect_uris=(),
    allowed_scopes=frozenset({"balance:read"}),
    status="active",
    created_at=CLOCK.now(),
)


def primed_cache(feed: FakeFeed) -> AccessCache:
    cache = AccessCache(feed, CLOCK)
    feed.connect()
    assert cache.needs_priming
    cache.primed(cache.begin_priming(), [("jti-old", CLOCK.now() + timedelta(minutes=5))])
    assert cache.ready
    return cache


def test_never_ready_without_a_live_feed_and_starts_it() -> None:
    feed = FakeFeed()
    cache = AccessCache(feed, CLOCK)
    assert not cache.ready and not cache.needs_priming
    assert feed.started == 1
    cache.remember(cache.epoch(), CLIENT, PARTNER)
    assert cache.client(CLIENT.id) is None


def test_serves_a_remembered_client_until_a_change_is_announced() -> None:
    feed = FakeFeed()
    cache = primed_cache(feed)
    cache.remember(cache.epoch(), CLIENT, PARTNER)
    assert cache.client(CLIENT.id) == (CLIENT, PARTNER)
    feed.notify(ACCESS, PARTNER.id)
    assert cache.client(CLIENT.id) is None


def test_a_read_that_raced_with_a_change_is_not_kept() -> None:
    feed = FakeFeed()
    cache = primed_cache(feed)
    epoch = cache.epoch()  # the read begins...
    feed.notify(ACCESS, CLIENT.id)  # ...a change commits (after the read's snapshot)...
    cache.remember(epoch, CLIENT, PARTNER)  # ...and the read's old row comes back
    assert cache.client(CLIENT.id) is None


def test_revocations_loaded_and_announced_are_both_held() -> None:
    feed = FakeFeed()
    cache = primed_cache(feed)
    assert cache.is_revoked("jti-old")
    assert not cache.is_revoked("jti-new")
    feed.notify(REVOKED, f"{int((CLOCK.now() + timedelta(minutes=5)).timestamp())} jti-new")
    assert cache.is_revoked("jti-new")


def test_losing_the_feed_forgets_everything_until_primed_again() -> None:
    feed = FakeFeed()
    cache = primed_cache(feed)
    cache.remember(cache.epoch(), CLIENT, PARTNER)
    feed.connect(live=False)
    assert not cache.ready
    assert cache.client(CLIENT.id) is None and not cache.is_revoked("jti-old")
    feed.connect()
    assert not cache.ready and cache.needs_priming


def test_priming_interrupted_by_a_reconnection_is_not_trusted() -> None:
    feed = FakeFeed()
    cache = AccessCache(feed, CLOCK)
    feed.connect()
    resets = cache.begin_priming()
    assert not cache.needs_priming  # one load at a time
    feed.connect(live=False)
    feed.connect()  # revocations committed in between were never heard
    cache.primed(resets, [])
    assert not cache.ready and cache.needs_priming


def test_revocations_of_long_expired_tokens_are_dropped() -> None:
    feed = FakeFeed()
    cache = AccessCache(feed, CLOCK)
    feed.connect()
    gone = CLOCK.now() - timedelta(seconds=FORGET_AFTER_SECONDS + 1)
    still = CLOCK.now() - timedelta(seconds=FORGET_AFTER_SECONDS - 60)
    cache.primed(cache.begin_priming(), [("gone", gone), ("still", still)])
    assert cache.is_revoked("still") and not cache.is_revoked("gone")

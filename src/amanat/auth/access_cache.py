"""Per-process cache of what the token check reads: clients, their partners, and the
revoked access tokens, so a request with a valid token reads none of them.

It is served only while the change feed is live (PostgreSQL LISTEN/NOTIFY). Every
transaction that changes a client or a partner (status, roles, quotas, limits) or revokes
a token announces it, and the announcement reaches this cache when it commits:

- a client or partner change empties the client cache (changes are rare; no need to be
  finer), and a read that raced with the change is not stored (epochs compared);
- a revocation adds the token's ``jti`` to the revoked set, which was loaded from the
  database once the feed was listening, so no revocation falls between the two.

When the feed drops, everything is forgotten and every request reads the database again
until the feed is back and the revoked set has been loaded anew. Where there is no feed
(SQLite) the cache is never used.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime

from amanat.identity.domain import OAuthClient, Partner
from amanat.kernel.clock import Clock
from amanat.platform.invalidation.ports import ChangeFeed

ACCESS = "access"  # a client or a partner changed (payload: its id, unused)
REVOKED = "revoked_jti"  # an access token was revoked (payload: "<exp> <stored jti>")
MAX_CLIENTS = 10_000
# A revocation is forgotten this long after its token's exp: well past the verifier's
# leeway, so the signature check refuses the token by then.
FORGET_AFTER_SECONDS = 600.0


def revoked_payload(stored_jti: str, expires_at: datetime) -> str:
    return f"{math.ceil(expires_at.timestamp())} {stored_jti}"


class AccessCache:
    def __init__(self, feed: ChangeFeed, clock: Clock) -> None:
        self._feed = feed
        self._clock = clock
        self._clients: dict[str, tuple[OAuthClient, Partner]] = {}
        self._revoked: dict[str, float] = {}  # stored jti -> expiry (POSIX seconds)
        self._resets = 0
        self._primed = False
        self._priming = False
        feed.subscribe(ACCESS, self._on_access)
        feed.subscribe(REVOKED, self._on_revoked)

    # -- what the token check asks -----------------------------------------------------

    @property
    def ready(self) -> bool:
        """Live and holding every revocation: :meth:`is_revoked` and :meth:`client` may be
        trusted. Starts the feed on first use."""
        if not self._feed.live:
            self._feed.start()
            return False
        return self._primed

    @property
    def needs_priming(self) -> bool:
        return self._feed.live and not self._primed and not self._priming

    def is_revoked(self, stored_jti: str) -> bool:
        return stored_jti in self._revoked

    def client(self, client_id: str) -> tuple[OAuthClient, Partner] | None:
        return self._clients.get(client_id)

    # -- filling it ----------------------------------------------------------------------

    def epoch(self) -> int:
        """Read before the database; hand back to :meth:`remember`."""
        return self._feed.epoch(ACCESS)

    def remember(self, epoch: int, client: OAuthClient, partner: Partner) -> None:
        """Keep a client read from the database, unless something changed since the read
        began (its change may have committed after the read's snapshot)."""
        if not self._feed.live or self._feed.epoch(ACCESS) != epoch:
            return
        if len(self._clients) >= MAX_CLIENTS:
            self._clients.clear()
        self._clients[client.id] = (client, partner)

    def begin_priming(self) -> int:
        self._priming = True
        return self._resets

    def primed(self, resets: int, revoked: Iterable[tuple[str, datetime]]) -> None:
        """The revocations read once the feed was live; trusted only if the feed did not
        drop (or reconnect) while they were read."""
        self._priming = False
        if resets != self._resets or not self._feed.live:
            return
        for jti, expires_at in revoked:
            self._revoked[jti] = expires_at.timestamp()
        self._prune()
        self._primed = True

    def priming_failed(self) -> None:
        self._priming = False

    # -- notifications -------------------------------------------------------------------

    def _on_access(self, _key: str) -> None:
        self._clients.clear()
        if not _key:  # connected or disconnected: also forget the revocations
            self._resets += 1
            self._revoked.clear()
            self._primed = False

    def _on_revoked(self, payload: str) -> None:
        if not payload:
            return  # the reset comes through _on_access
        expiry, _, jti = payload.partition(" ")
        try:
            self._revoked[jti] = float(expiry)
        except ValueError:
            self._revoked[jti] = math.inf
        if len(self._revoked) % 1024 == 0:
            self._prune()

    def _prune(self) -> None:
        # A token past its exp is refused by its signature check; its revocation can go.
        cutoff = self._clock.now().timestamp() - FORGET_AFTER_SECONDS
        for jti in [j for j, exp in self._revoked.items() if exp < cutoff]:
            del self._revoked[jti]

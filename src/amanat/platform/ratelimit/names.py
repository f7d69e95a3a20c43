"""Rate-limit facts other packages name, kept apart from the limiter (which needs the
``limits`` library) so that a pure domain can use them."""

from __future__ import annotations

from datetime import timedelta

PARTNER_RATE_LIMIT_POLICIES = frozenset({"read", "write"})
"""Policies a partner-specific override may replace (the partner is known on those only)."""

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)

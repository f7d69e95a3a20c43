"""How the sandbox rail signs its callbacks.

The scheme itself lives in :mod:`amanat.kernel.rail_signatures` (the receiving side
verifies with the same code); this module only builds the headers of one delivery. It is
the one place the sandbox imports from ``amanat.kernel``.
"""

from __future__ import annotations

from datetime import datetime

from amanat.kernel.rail_signatures import SIGNATURE_HEADER, sign

__all__ = ["SIGNATURE_HEADER", "callback_headers"]


def callback_headers(
    secret: str | bytes, body: bytes, now: datetime, *, attempt: int = 1
) -> dict[str, str]:
    """Headers for one callback delivery of ``body`` at ``now``."""
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body, int(now.timestamp())),
        "Rail-Delivery-Attempt": str(attempt),
    }

"""The sandbox rail's account-title directory: what Raast's title fetch answers for an
account at another bank.

The sandbox has no other banks, so every well-formed IBAN or Raast ID has a made-up,
deterministic holder (the same name every time). Test values: an account number or a
mobile number ending in ``0000`` belongs to no one (404 ``unknown_account``), so a payer
can see ``unavailable`` too (docs/sandbox-rail.md).
"""

from __future__ import annotations

import hashlib

_FIRST = (
    "AHMED", "FATIMA", "HASSAN", "AMNA", "USMAN", "SANA", "ZAIN", "HIRA", "OMAR", "MARIAM",
    "KASHIF", "NIDA", "FAHAD", "SADIA", "IMRAN", "RABIA",
)  # fmt: skip
_LAST = (
    "QURESHI", "MALIK", "SIDDIQUI", "CHAUDHRY", "BUTT", "SHEIKH", "RAZA", "ABBASI", "IQBAL",
    "JAVED", "MIRZA", "BAIG", "HUSSAIN", "KHAN",
)  # fmt: skip


def title_of(identifier: str) -> str | None:
    """The holder's name for a normalised IBAN or E.164 Raast ID, or None (no account)."""
    if identifier.endswith("0000"):
        return None
    digest = hashlib.sha256(identifier.encode()).digest()
    return f"{_FIRST[digest[0] % len(_FIRST)]} {_LAST[digest[1] % len(_LAST)]}"

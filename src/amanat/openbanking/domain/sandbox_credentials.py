"""The sandbox bank's one password: its customers are made up, so it is public (the
sign-in page and ``make run`` show it). A production deployment has no sandbox bank."""

from __future__ import annotations

SANDBOX_PSU_PASSWORD = "sandbox-psu-2026"

"""A PSU's walk through the hosted pages: authorising one consent, or signing in to the
consent dashboard (a walk without a consent).

Stages: ``sign_in`` (the bank's login), ``sca`` (a one-time code, the second factor),
``decide`` (choose accounts, approve or deny; on the dashboard, signed in), then
``done``. A walk only moves forward; it ends after too many wrong passwords or codes, or
when it times out, and its consent is then rejected, because a TPP waiting on its
redirect must hear an answer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

WALK_LIFETIME = timedelta(minutes=15)
DASHBOARD = "dashboard"  # the scope of a dashboard walk
CODE_LIFETIME = timedelta(minutes=5)
MAX_FAILURES = 5


class Stage(StrEnum):
    SIGN_IN = "sign_in"
    SCA = "sca"
    DECIDE = "decide"
    DONE = "done"


_NEXT = {Stage.SIGN_IN: Stage.SCA, Stage.SCA: Stage.DECIDE, Stage.DECIDE: Stage.DONE}


class WalkError(Exception):
    """The walk cannot take this step; ``reason`` is machine-readable."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AuthorisationWalk:
    id: str
    secret_hash: str
    consent_id: str | None  # None: the dashboard
    client_id: str
    redirect_uri: str
    state: str | None
    scope: str
    code_challenge: str
    stage: Stage
    created_at: datetime
    expires_at: datetime
    psu_id: str | None = None
    otp_hash: str | None = None
    otp_expires_at: datetime | None = None
    failures: int = 0

    def open_at(self, now: datetime) -> bool:
        return self.stage is not Stage.DONE and now < self.expires_at

    def expect(self, stage: Stage, now: datetime) -> None:
        if not self.open_at(now):
            raise WalkError("walk_over")
        if self.stage is not stage:
            raise WalkError("wrong_stage")

    def failed(self) -> AuthorisationWalk:
        return replace(self, failures=self.failures + 1)

    @property
    def locked_out(self) -> bool:
        return self.failures >= MAX_FAILURES

    def signed_in(self, psu_id: str, otp_hash: str, now: datetime) -> AuthorisationWalk:
        self.expect(Stage.SIGN_IN, now)
        return replace(
            self,
            stage=_NEXT[Stage.SIGN_IN],
            psu_id=psu_id,
            otp_hash=otp_hash,
            otp_expires_at=now + CODE_LIFETIME,
        )

    def signed_in_again(self, otp_hash: str, now: datetime) -> AuthorisationWalk:
        """A new one-time code replaces the last (the PSU asked to resend it)."""
        self.expect(Stage.SCA, now)
        return replace(self, otp_hash=otp_hash, otp_expires_at=now + CODE_LIFETIME)

    def code_fresh(self, now: datetime) -> bool:
        return self.otp_expires_at is not None and now < self.otp_expires_at

    def verified(self, now: datetime) -> AuthorisationWalk:
        self.expect(Stage.SCA, now)
        return replace(self, stage=_NEXT[Stage.SCA], otp_hash=None, otp_expires_at=None, failures=0)

    def finished(self, now: datetime) -> AuthorisationWalk:
        if self.stage is Stage.DONE:
            raise WalkError("walk_over")
        return replace(self, stage=Stage.DONE, otp_hash=None, otp_expires_at=None)

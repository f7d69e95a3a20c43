"""Operator accounts for the console: creation, login with password and TOTP, sessions.

Failures are audited even though the login is refused, so the audit record is committed
before the refusal is returned. They are counted per (email, source IP) in a shared
:class:`~amanat.platform.db.ports.FailureLockout`, so a guesser locks out only its own
address, and unknown emails are counted the same way as accounts.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp

from amanat.identity.access import Permission, parse_operator_roles
from amanat.identity.domain import Operator
from amanat.identity.errors import AccountLocked, LoginFailed, PermissionDenied
from amanat.identity.ports import FailureLockout, IdentityTx, SecretHasher, SessionRecord
from amanat.kernel.clock import Clock
from amanat.kernel.errors import Conflict, DomainError, InvalidInput, NotFound
from amanat.kernel.ids import new_id
from amanat.platform.audit import recorder as audit
from amanat.platform.audit.domain import Actor
from amanat.platform.db.ports import TransactionFactory
from amanat.platform.protection.ports import SecretSealer

MIN_PASSWORD_LENGTH = 12
SESSION_LIFETIME = timedelta(hours=12)
SESSION_IDLE = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class NewOperator:
    operator: Operator
    totp_secret: str
    provisioning_uri: str


@dataclass(frozen=True, slots=True)
class LoginResult:
    operator: Operator
    session_token: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class OperatorSession:
    operator: Operator
    session: SessionRecord

    def require(self, permission: Permission) -> None:
        if permission not in self.operator.permissions:
            raise PermissionDenied(f"Your roles do not grant '{permission.value}'.")


def _fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:16]


def _session_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _totp_step(moment: datetime) -> int:
    return int(moment.timestamp()) // 30


class OperatorService:
    def __init__(
        self,
        transactions: TransactionFactory[IdentityTx],
        clock: Clock,
        hasher: SecretHasher,
        sealer: SecretSealer,
        issuer_name: str = "amanat",
        sign_in_lockout: FailureLockout | None = None,
        email_failures: FailureLockout | None = None,
    ) -> None:
        self._tx = transactions
        self._lockout = sign_in_lockout
        self._email_failures = email_failures
        self._clock = clock
        self._hasher = hasher
        self._sealer = sealer
        self._issuer_name = issuer_name

    async def create_operator(
        self, actor: Actor, *, email: str, name: str, roles: list[str], password: str
    ) -> NewOperator:
        email = email.strip().lower()
        if "@" not in email or len(email) > 254:
            raise InvalidInput("A valid email address is required.", code="validation_error")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidInput(
                f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.", code="weak_password"
            )
        parsed_roles = parse_operator_roles(roles)
        totp_secret = pyotp.random_base32()
        now = self._clock.now()
        operator_id = new_id("operator")
        # The TOTP seed is a shared secret: stored only encrypted, bound to this row.
        sealed_totp = await self._sealer.seal(
            totp_secret, table="operators", column="totp_secret", row_id=operator_id
        )
        operator = Operator(
            id=operator_id,
            email=email,
            name=name.strip() or email,
            password_hash=await self._hasher.hash(password),
            totp_secret=sealed_totp,
            roles=parsed_roles,
            status="active",
            failed_logins=0,
            locked_until=None,
            last_totp_step=None,
            created_at=now,
        )
        async with self._tx.write() as tx:
            if await tx.operators.get_operator_by_email(email) is not None:
                raise Conflict(f"An operator with email {email} already exists.")
            await tx.operators.add_operator(operator)
            await audit.record(
                tx,
                self._clock,
                actor,
                "operator.created",
                target_type="operator",
                target_id=operator.id,
                payload={"email": email, "roles": sorted(r.value for r in parsed_roles)},
            )
        uri = pyotp.TOTP(totp_secret).provisioning_uri(name=email, issuer_name=self._issuer_name)
        return NewOperator(operator=operator, totp_secret=totp_secret, provisioning_uri=uri)

    async def set_roles(self, actor: Actor, operator_id: str, roles: list[str]) -> Operator:
        parsed = parse_operator_roles(roles)
        async with self._tx.write() as tx:
            before = await tx.operators.get_operator(operator_id)
            if before is None:
                raise NotFound(f"No operator '{operator_id}'.")
            if actor.id == operator_id:
                raise Conflict("Operators cannot change their own roles.")
            await tx.operators.set_operator_roles(operator_id, sorted(r.value for r in parsed))
            await tx.operators.revoke_operator_sessions(operator_id, self._clock.now())
            await audit.record(
                tx,
                self._clock,
                actor,
                "operator.role_changed",
                target_type="operator",
                target_id=operator_id,
                payload={
                    "from": sorted(r.value for r in before.roles),
                    "to": sorted(r.value for r in parsed),
                },
            )
            after = await tx.operators.get_operator(operator_id)
        assert after is not None
        return after

    async def login(
        self,
        *,
        email: str,
        password: str,
        totp_code: str,
        source_ip: str | None,
        user_agent: str | None,
    ) -> LoginResult:
        email = email.strip().lower()
        now = self._clock.now()
        async with self._tx.read() as tx:
            operator = await tx.operators.get_operator_by_email(email)
        password_ok = await self._hasher.verify(
            operator.password_hash if operator else _DUMMY_HASH, password
        )
        actor = Actor(
            type="operator",
            # Never a raw, attacker-chosen string in the audit trail: a short hash of it.
            id=operator.id if operator else f"unknown:{_fingerprint(email)}",
            source_ip=source_ip,
            user_agent=user_agent,
        )
        # Failures lock out an (email, source IP) pair, never the account everywhere: a
        # guesser who knows an email shuts out only its own address, and the operator
        # still signs in from theirs. Unknown emails go through the same counter.
        email_key = _fingerprint(email)
        lock_key = f"{email_key}|{source_ip or '-'}"
        locked = self._lockout is not None and await self._lockout.is_locked(lock_key)
        async with self._tx.write() as tx:
            if operator is None:
                await audit.record(
                    tx,
                    self._clock,
                    actor,
                    "operator.login_failed",
                    target_type="operator",
                    payload={"reason": "locked" if locked else "unknown_email"},
                )
            else:
                result = await self._attempt(
                    tx,
                    operator.id,
                    actor,
                    password_ok,
                    totp_code,
                    now,
                    source_ip,
                    user_agent,
                    locked,
                )
                if result is not None:
                    return result
        # After the transaction: the count lives in the shared limiter store, and a
        # database writer must not wait on it.
        raise await self._failure(email_key, lock_key, actor, operator, locked=locked)

    async def _failure(
        self,
        email_key: str,
        lock_key: str,
        actor: Actor,
        operator: Operator | None,
        *,
        locked: bool,
    ) -> DomainError:
        """401 until the MAX_FAILED_LOGINS-th failure from this address at this email, then
        423 with Retry-After for the lockout period; the same whether the account exists."""
        lockout = self._lockout
        if lockout is None:
            return LoginFailed("Email, password or code is wrong.")
        if not locked:
            # Once the email has failed too often from everywhere, every further failing
            # address is locked at once; addresses that do not fail are never refused.
            email_failures = self._email_failures
            if email_failures is not None and await email_failures.record_failure(email_key):
                await lockout.lock(lock_key)
            elif not await lockout.record_failure(lock_key):
                return LoginFailed("Email, password or code is wrong.")
            if operator is not None:
                async with self._tx.write() as tx:
                    await audit.record(
                        tx,
                        self._clock,
                        actor,
                        "operator.locked_out",
                        target_type="operator",
                        target_id=operator.id,
                        payload={"source_ip": actor.source_ip},
                    )
        return AccountLocked(await lockout.seconds_left(lock_key))

    async def _attempt(
        self,
        tx: IdentityTx,
        operator_id: str,
        actor: Actor,
        password_ok: bool,
        totp_code: str,
        now: datetime,
        source_ip: str | None,
        user_agent: str | None,
        locked: bool,
    ) -> LoginResult | None:
        """A session when every check passes; otherwise the failure is audited and None."""
        current = await tx.operators.get_operator(operator_id)
        assert current is not None
        reason: str | None = None
        if locked:
            reason = "locked"  # even the right password and code, from this address
        elif current.status != "active":
            reason = "disabled"
        elif not password_ok:
            reason = "bad_password"
        elif not await self._totp_matches(current, totp_code, now):
            reason = "bad_totp"
        if reason is not None:
            await audit.record(
                tx,
                self._clock,
                actor,
                "operator.login_failed",
                target_type="operator",
                target_id=current.id,
                payload={"reason": reason},
            )
            return None
        updated = current.after_successful_login(now, _totp_step(now))
        await tx.operators.save_login_state(updated)
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        session = SessionRecord(
            id_hash=_session_hash(token),
            operator_id=current.id,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
            idle_expires_at=now + SESSION_IDLE,
            source_ip=source_ip,
            user_agent=user_agent,
            revoked_at=None,
        )
        await tx.operators.add_session(session)
        await audit.record(
            tx,
            self._clock,
            actor,
            "operator.login_succeeded",
            target_type="operator",
            target_id=current.id,
        )
        return LoginResult(
            operator=updated, session_token=token, csrf_token=csrf, expires_at=session.expires_at
        )

    async def _totp_matches(self, operator: Operator, code: str, now: datetime) -> bool:
        code = code.strip().replace(" ", "")
        if not code.isdigit() or len(code) != 6:
            return False
        secret = await self._sealer.unseal(
            operator.totp_secret, table="operators", column="totp_secret", row_id=operator.id
        )
        totp = pyotp.TOTP(secret)
        for offset in (-1, 0, 1):
            step = _totp_step(now) + offset
            if secrets.compare_digest(totp.at(step * 30), code):
                # A code is good once: replaying an accepted code (or an older one) fails.
                return operator.last_totp_step is None or step > operator.last_totp_step
        return False

    async def session(self, token: str | None) -> OperatorSession | None:
        if not token:
            return None
        now = self._clock.now()
        async with self._tx.write() as tx:
            record = await tx.operators.get_session(_session_hash(token))
            if record is None or record.revoked_at is not None:
                return None
            if record.expires_at <= now or record.idle_expires_at <= now:
                return None
            operator = await tx.operators.get_operator(record.operator_id)
            if operator is None or operator.status != "active":
                return None
            idle = min(now + SESSION_IDLE, record.expires_at)
            if idle - record.idle_expires_at > timedelta(minutes=1):
                await tx.operators.touch_session(record.id_hash, idle)
        return OperatorSession(operator=operator, session=record)

    async def logout(self, current: OperatorSession, actor: Actor) -> None:
        async with self._tx.write() as tx:
            await tx.operators.revoke_session(current.session.id_hash, self._clock.now())
            await audit.record(
                tx,
                self._clock,
                actor,
                "operator.logged_out",
                target_type="operator",
                target_id=current.operator.id,
            )


_DUMMY_HASH = (
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$"
    "2j3qMSx9t9CB3mmrtXAa1mXa7/f5mJ4nE3QlzdBqGk0"
)

"""The PSU's authorisation of a consent in the bank's hosted pages: sign in, a one-time
code (strong customer authentication), then choose accounts and approve or deny.

Each step checks the browser's walk secret (a cookie only this walk's pages get), so a
page opened by someone else cannot move the walk. Too many wrong passwords or codes end
the walk and reject the consent; so does denying. Approving issues the authorization
code first and then authorises the consent: a code whose consent never got authorised
yields a token every resource request refuses, while the reverse order could leave an
authorised consent no TPP can use.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta

from amanat.kernel.clock import Clock
from amanat.kernel.errors import Contention, InvalidInput
from amanat.kernel.ids import new_id
from amanat.kernel.pakistan import parse_iban
from amanat.openbanking.domain.authorisation import (
    DASHBOARD,
    WALK_LIFETIME,
    AuthorisationWalk,
    Stage,
    WalkError,
)
from amanat.openbanking.domain.consents import (
    Consent,
    ConsentKind,
    ConsentStateError,
    ConsentStatus,
)
from amanat.openbanking.domain.events import consent_changed
from amanat.openbanking.errors import ConsentStateConflict, ResourceNotFound
from amanat.openbanking.ports import (
    BankAccount,
    BankCustomer,
    CodeIssuer,
    CoreBanking,
    FailureGuard,
    OpenBankingTx,
)
from amanat.openbanking.services.consents import ConsentService, trail
from amanat.platform.audit import recorder as audit
from amanat.platform.audit.domain import Actor
from amanat.platform.db.ports import TransactionFactory


def _iban(value: object) -> str | None:
    """An IBAN as the bank stores it (upper case, no spaces), however the TPP wrote it."""
    try:
        return parse_iban(str(value)).value
    except InvalidInput:
        return None


def _code_hash(walk_id: str, secret: str, code: str) -> str:
    """Keyed by the walk's secret, which only the browser holds (the database keeps its
    hash): a reader of the database cannot try the million codes against it."""
    return hmac.new(secret.encode(), f"{walk_id}\x1f{code}".encode(), hashlib.sha256).hexdigest()


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class WalkRequest:
    """The authorization request as the TPP sent the PSU here (already checked: client,
    redirect URI, PKCE)."""

    consent_id: str
    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    code_challenge: str


@dataclass(frozen=True, slots=True)
class Started:
    walk: AuthorisationWalk
    secret: str
    consent: Consent


@dataclass(frozen=True, slots=True)
class AskCode:
    """Signed in: the PSU must now enter the one-time code sent to their phone. The
    sandbox has no SMS, so the page shows ``code`` on a sandbox-only notice."""

    walk: AuthorisationWalk
    code: str
    customer: BankCustomer


@dataclass(frozen=True, slots=True)
class AskDecision:
    walk: AuthorisationWalk
    consent: Consent
    accounts: list[BankAccount]


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A dashboard walk passed sign-in and the one-time code: the PSU may now see and
    withdraw their consents for the rest of the walk's lifetime."""

    walk: AuthorisationWalk


@dataclass(frozen=True, slots=True)
class Retry:
    """The step failed but the walk goes on (wrong password or code)."""

    walk: AuthorisationWalk
    reason: str


@dataclass(frozen=True, slots=True)
class Finish:
    """Back to the TPP: with ``code`` on approval, else with ``error``."""

    redirect_uri: str
    state: str | None
    code: str | None = None
    error: str | None = None
    description: str | None = None


class AuthorisationService:
    def __init__(
        self,
        transactions: TransactionFactory[OpenBankingTx],
        clock: Clock,
        bank: CoreBanking,
        codes: CodeIssuer,
        consents: ConsentService,
        customer_guard: FailureGuard,
        address_guard: FailureGuard,
    ) -> None:
        self._tx = transactions
        self._clock = clock
        self._bank = bank
        self._codes = codes
        self._consents = consents
        # Failures counted across walks: per username or customer, and per address.
        self._customer_guard = customer_guard
        self._address_guard = address_guard

    async def start(self, request: WalkRequest) -> Started:
        now = self._clock.now()
        async with self._tx.lookup() as tx:
            found = await tx.consents.get(request.consent_id)
        consent = found[0].as_of(now) if found else None
        if consent is None or consent.client_id != request.client_id:
            raise ResourceNotFound("No such consent for this client.", path="consent_id")
        if consent.status is not ConsentStatus.AWAITING_AUTHORISATION:
            raise ConsentStateConflict(
                f"The consent is {consent.status.value}; it cannot be authorised again."
            )
        if consent.scope not in request.scope.split():
            raise ConsentStateConflict(f"This consent needs the scope '{consent.scope}'.")
        secret = secrets.token_urlsafe(32)
        walk = AuthorisationWalk(
            id=new_id("psu_walk"),
            secret_hash=_hash(secret),
            consent_id=consent.id,
            client_id=request.client_id,
            redirect_uri=request.redirect_uri,
            state=request.state,
            scope=consent.scope,
            code_challenge=request.code_challenge,
            stage=Stage.SIGN_IN,
            created_at=now,
            expires_at=now + WALK_LIFETIME,
        )
        async with self._tx.write() as tx:
            await tx.psu_walks.add(walk)
        return Started(walk, secret, consent)

    async def purge_ended(self) -> int:
        """Forget walks that ended over an hour ago (they hold no secret, but are
        made by unauthenticated requests, so they must not pile up)."""
        async with self._tx.write() as tx:
            return await tx.psu_walks.delete_ended(self._clock.now() - timedelta(hours=1))

    async def start_dashboard(self) -> tuple[AuthorisationWalk, str]:
        """A walk that signs a PSU in to the consent dashboard."""
        now = self._clock.now()
        secret = secrets.token_urlsafe(32)
        walk = AuthorisationWalk(
            id=new_id("psu_walk"),
            secret_hash=_hash(secret),
            consent_id=None,
            client_id="",
            redirect_uri="",
            state=None,
            scope=DASHBOARD,
            code_challenge="",
            stage=Stage.SIGN_IN,
            created_at=now,
            expires_at=now + WALK_LIFETIME,
        )
        async with self._tx.write() as tx:
            await tx.psu_walks.add(walk)
        return walk, secret

    async def dashboard_psu(self, walk_id: str, secret: str) -> str:
        """The PSU a dashboard walk signed in, while it lasts."""
        async with self._tx.read() as tx:
            walk = await self._walk(tx, walk_id, secret)
        walk.expect(Stage.DECIDE, self._clock.now())
        if walk.consent_id is not None or walk.psu_id is None:
            raise WalkError("unknown_walk")
        return walk.psu_id

    async def view(self, walk_id: str, secret: str) -> tuple[AuthorisationWalk, Consent | None]:
        """The walk and its consent (none for the dashboard), to show the current step."""
        async with self._tx.read() as tx:
            walk = await self._walk(tx, walk_id, secret)
        consent = await self._consents.opened(walk.consent_id) if walk.consent_id else None
        if not walk.open_at(self._clock.now()) or (walk.consent_id and consent is None):
            raise WalkError("walk_over")
        return walk, consent

    async def accounts_for_decision(
        self, walk: AuthorisationWalk, consent: Consent
    ) -> list[BankAccount]:
        """The PSU's accounts the consent may cover: any of them, or for a funds
        confirmation only the account the TPP named (none if it is not the PSU's)."""
        assert walk.psu_id is not None
        held = await self._bank.accounts_of(walk.psu_id)
        details = consent.details or {}
        if consent.kind is ConsentKind.FUNDS_CONFIRMATION:
            named = (details.get("DebtorAccount") or {}).get("Identification")
            return [account for account in held if account.iban == _iban(named)]
        if consent.kind is ConsentKind.DOMESTIC_PAYMENT:
            debtor = (details.get("Initiation") or {}).get("DebtorAccount")
            if debtor is not None:
                return [a for a in held if a.iban == _iban(debtor.get("Identification"))]
        return held

    async def accounts_of(self, psu_id: str) -> list[BankAccount]:
        return await self._bank.accounts_of(psu_id)

    async def _locked(self, who: str, actor: Actor) -> bool:
        address = f"ip:{actor.source_ip or 'unknown'}"
        return await self._customer_guard.is_locked(who) or await self._address_guard.is_locked(
            address
        )

    async def _count_failure(self, who: str, actor: Actor) -> None:
        await self._customer_guard.record_failure(who)
        await self._address_guard.record_failure(f"ip:{actor.source_ip or 'unknown'}")

    async def sign_in(
        self, walk_id: str, secret: str, username: str, password: str, actor: Actor
    ) -> AskCode | Retry | Finish:
        now = self._clock.now()
        async with self._tx.read() as tx:
            walk = await self._walk(tx, walk_id, secret)
        walk.expect(Stage.SIGN_IN, now)  # before any password is checked
        who = f"user:{username.strip().lower()[:64]}"
        if await self._locked(who, actor):
            return Retry(walk, "locked")
        customer = await self._bank.sign_in(username, password)
        if customer is None:
            await self._count_failure(who, actor)
        async with self._tx.write() as tx:
            walk = await self._walk(tx, walk_id, secret)
            walk.expect(Stage.SIGN_IN, now)
            if customer is None:
                return await self._failed(tx, walk, "wrong_credentials", actor)
            code = f"{secrets.randbelow(10**6):06d}"
            walk = walk.signed_in(customer.id, _code_hash(walk.id, secret, code), now)
            await tx.psu_walks.save(walk)
        return AskCode(walk, code, customer)

    async def resend_code(self, walk_id: str, secret: str) -> AskCode:
        now = self._clock.now()
        async with self._tx.write() as tx:
            walk = await self._walk(tx, walk_id, secret)
            walk.expect(Stage.SCA, now)
            assert walk.psu_id is not None
            customer = await self._bank.customer(walk.psu_id)
            if customer is None:
                raise WalkError("walk_over")
            code = f"{secrets.randbelow(10**6):06d}"
            walk = walk.signed_in_again(_code_hash(walk.id, secret, code), now)
            await tx.psu_walks.save(walk)
        return AskCode(walk, code, customer)

    async def verify_code(
        self, walk_id: str, secret: str, code: str, actor: Actor
    ) -> AskDecision | SignedIn | Retry | Finish:
        now = self._clock.now()
        async with self._tx.read() as tx:
            walk = await self._walk(tx, walk_id, secret)
        walk.expect(Stage.SCA, now)
        who = f"psu:{walk.psu_id}"
        if await self._locked(who, actor):
            return Retry(walk, "locked")
        right = walk.code_fresh(now) and hmac.compare_digest(
            _code_hash(walk.id, secret, code.strip()), walk.otp_hash or ""
        )
        if not right:
            await self._count_failure(who, actor)
        async with self._tx.write() as tx:
            walk = await self._walk(tx, walk_id, secret)
            walk.expect(Stage.SCA, now)
            if not right:
                reason = "code_expired" if not walk.code_fresh(now) else "wrong_code"
                return await self._failed(tx, walk, reason, actor)
            walk = walk.verified(now)
            await tx.psu_walks.save(walk)
            if walk.consent_id is None:
                return SignedIn(walk)
        consent = await self._consents.opened(walk.consent_id)
        if consent is None:
            raise WalkError("walk_over")
        return AskDecision(walk, consent, await self.accounts_for_decision(walk, consent))

    async def decide(
        self,
        walk_id: str,
        secret: str,
        *,
        approve: bool,
        account_ids: list[str],
        actor: Actor,
        device: str | None,
    ) -> Finish | Retry:
        now = self._clock.now()
        async with self._tx.read() as tx:
            walk = await self._walk(tx, walk_id, secret)
        walk.expect(Stage.DECIDE, now)
        if walk.consent_id is None or walk.psu_id is None:
            raise WalkError("wrong_stage")  # the dashboard decides no consent
        code: str | None = None
        chosen: tuple[str, ...] = ()
        if approve:
            consent_now = await self._consents.opened(walk.consent_id)
            if consent_now is None:
                raise WalkError("walk_over")
            offered = await self.accounts_for_decision(walk, consent_now)
            held = {account.id for account in offered}
            chosen = tuple(dict.fromkeys(a for a in account_ids if a in held))
            if not chosen or len(chosen) != len(set(account_ids)):
                return Retry(walk, "choose_accounts")
            if consent_now.kind is not ConsentKind.ACCOUNT_ACCESS and len(chosen) != 1:
                return Retry(walk, "choose_one_account")
            code = await self._codes.issue_code(
                client_id=walk.client_id,
                redirect_uri=walk.redirect_uri,
                scope=walk.scope,
                code_challenge=walk.code_challenge,
                code_challenge_method="S256",
                subject=walk.psu_id,
                consent_id=walk.consent_id,
            )
        async with self._tx.write() as tx:
            walk = await self._walk(tx, walk_id, secret)
            walk.expect(Stage.DECIDE, now)
            found = await tx.consents.get_for_update(walk.consent_id or "")
            if found is None:
                raise WalkError("walk_over")
            consent = found[0].as_of(now)
            try:
                decided = (
                    consent.authorise(walk.psu_id or "", chosen, now)
                    if approve
                    else consent.reject(now, "psu_denied", walk.psu_id)
                )
            except ConsentStateError as exc:
                raise ConsentStateConflict(
                    f"The consent is {exc.status.value}; it can no longer be decided."
                ) from None
            if not await tx.consents.save(decided):
                raise Contention("The consent changed meanwhile; try again.")
            await tx.psu_walks.save(walk.finished(now))
            await audit.record(
                tx,
                self._clock,
                actor,
                "consent.authorised" if approve else "consent.rejected",
                target_type="consent",
                target_id=consent.id,
                payload=trail(decided) | {"device": device},
            )
            event = consent_changed(decided)
            if event is not None:
                tx.publish(event)
        if approve:
            return Finish(walk.redirect_uri, walk.state, code=code)
        return Finish(
            walk.redirect_uri,
            walk.state,
            error="access_denied",
            description="The customer denied the request.",
        )

    async def _walk(self, tx: OpenBankingTx, walk_id: str, secret: str) -> AuthorisationWalk:
        walk = await tx.psu_walks.get_for_update(walk_id)
        if walk is None or not hmac.compare_digest(walk.secret_hash, _hash(secret)):
            raise WalkError("unknown_walk")
        return walk

    async def _failed(
        self, tx: OpenBankingTx, walk: AuthorisationWalk, reason: str, actor: Actor
    ) -> Retry | Finish:
        walk = walk.failed()
        if not walk.locked_out:
            await tx.psu_walks.save(walk)
            return Retry(walk, reason)
        # The walk ends, the consent does not: anyone holding the link could otherwise
        # fail on purpose and reject a consent meant for someone else. The TPP may start
        # a new walk; the customer's own budget (the guards) still stops a guesser.
        now = self._clock.now()
        await tx.psu_walks.save(walk.finished(now))
        await audit.record(
            tx,
            self._clock,
            replace(actor, id=walk.psu_id or actor.id),
            "psu.authentication_failed",
            target_type="consent" if walk.consent_id else "psu_walk",
            target_id=walk.consent_id or walk.id,
            payload={"walk_id": walk.id, "failures": walk.failures, "last": reason},
        )
        if walk.consent_id is None:
            return Retry(walk, "walk_locked")
        return Finish(
            walk.redirect_uri,
            walk.state,
            error="access_denied",
            description="The customer could not be authenticated.",
        )

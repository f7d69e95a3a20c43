"""Consents as TPPs, PSUs and the clock change them, each change with its audit record.

Every status change is written with the consent's version checked and an audit record in
the same transaction (the consent trail): who (TPP client, PSU, or the system), what
(permissions, accounts, amounts), when and from where. A token bound to a consent is
honoured only while :meth:`ConsentService.usable_for` finds the consent usable, so a
withdrawal takes effect on the very next request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from amanat.kernel.clock import Clock, format_timestamp
from amanat.kernel.errors import Contention, InvalidInput
from amanat.kernel.ids import new_id
from amanat.kernel.money import Money
from amanat.kernel.pakistan import parse_iban, parse_raast_id
from amanat.openbanking.domain.consents import (
    AWAITING_WINDOW,
    Consent,
    ConsentKind,
    ConsentStateError,
    ConsentStatus,
)
from amanat.openbanking.domain.events import consent_changed
from amanat.openbanking.domain.permissions import (
    InvalidConsentRequest,
    validate_permissions,
    validate_window,
)
from amanat.openbanking.errors import (
    ConsentMismatch,
    ConsentStateConflict,
    FieldInvalid,
    InvalidConsentStatus,
    ResourceNotFound,
)
from amanat.openbanking.ports import OpenBankingTx, Sealer, TokenRevoker
from amanat.platform.audit import recorder as audit
from amanat.platform.audit.domain import SYSTEM, Actor
from amanat.platform.db.ports import TransactionFactory

IBAN_SCHEME = "UK.OBIE.IBAN"
RAAST_SCHEME = "PK.SBP.RaastID"
RAAST_INSTRUMENT = "PK.SBP.Raast"


def check_initiation(initiation: dict[str, Any]) -> None:
    """What amanat can pay: PKR over Raast, to an IBAN or a Raast ID, from an IBAN."""
    amount = initiation["InstructedAmount"]
    if amount["Currency"] != "PKR":
        raise FieldInvalid(
            "Domestic payments are in PKR.",
            path="Data.Initiation.InstructedAmount.Currency",
            obie_code="UK.OBIE.Unsupported.Currency",
        )
    try:
        if not Money.from_major_string(amount["Amount"], "PKR").is_positive:
            raise InvalidInput("The amount must be more than zero.", code="invalid_amount")
    except InvalidInput as exc:
        raise FieldInvalid(exc.message, path="Data.Initiation.InstructedAmount.Amount") from None
    instrument = initiation.get("LocalInstrument")
    if instrument is not None and instrument != RAAST_INSTRUMENT:
        raise FieldInvalid(
            f"LocalInstrument must be {RAAST_INSTRUMENT} or left out.",
            path="Data.Initiation.LocalInstrument",
            obie_code="UK.OBIE.Unsupported.LocalInstrument",
        )
    creditor = initiation["CreditorAccount"]
    _check_account(creditor, "Data.Initiation.CreditorAccount", raast=True)
    if initiation.get("DebtorAccount") is not None:
        _check_account(initiation["DebtorAccount"], "Data.Initiation.DebtorAccount", raast=False)


def _check_account(account: dict[str, Any], path: str, *, raast: bool) -> None:
    schemes = (IBAN_SCHEME, RAAST_SCHEME) if raast else (IBAN_SCHEME,)
    scheme = account["SchemeName"]
    if scheme not in schemes:
        raise FieldInvalid(
            f"{path}.SchemeName must be one of {', '.join(schemes)}.",
            path=f"{path}.SchemeName",
            obie_code="UK.OBIE.Unsupported.AccountIdentifier",
        )
    try:
        if scheme == IBAN_SCHEME:
            parse_iban(account["Identification"])
        else:
            parse_raast_id(account["Identification"])
    except InvalidInput as exc:
        raise FieldInvalid(exc.message, path=f"{path}.Identification") from None


# How many consents one run of the expiry job settles; the rest wait for the next run.
END_BATCH = 500


@dataclass(frozen=True, slots=True)
class Tpp:
    """The TPP calling: its OAuth client and the partner that owns it."""

    partner_id: str
    client_id: str


@dataclass(frozen=True, slots=True)
class BoundToken:
    """What a resource request's token says about its consent."""

    client_id: str
    consent_id: str | None
    subject: str


def _publish(tx: OpenBankingTx, consent: Consent) -> None:
    event = consent_changed(consent)
    if event is not None:
        tx.publish(event)


def trail(consent: Consent) -> dict[str, Any]:
    """What an audit record of a consent change says about the consent."""
    return {
        "kind": consent.kind.value,
        "client_id": consent.client_id,
        "status": consent.status.value,
        "permissions": list(consent.permissions),
        "accounts": list(consent.account_ids),
        "expires_at": format_timestamp(consent.expires_at) if consent.expires_at else None,
        "reason": consent.ended_reason,
    }


class ConsentService:
    def __init__(
        self,
        transactions: TransactionFactory[OpenBankingTx],
        clock: Clock,
        sealer: Sealer,
        tokens: TokenRevoker,
    ) -> None:
        self._tx = transactions
        self._clock = clock
        self._sealer = sealer
        self._tokens = tokens

    async def _opened(self, found: tuple[Consent, str | None] | None) -> Consent | None:
        """The stored consent with its details unsealed."""
        if found is None:
            return None
        consent, sealed = found
        if sealed is None:
            return consent
        text = await self._sealer.unseal(
            sealed, table="consents", column="details", row_id=consent.id
        )
        return replace(consent, details=json.loads(text))

    async def _add(self, consent: Consent, actor: Actor) -> Consent:
        sealed = (
            await self._sealer.seal(
                json.dumps(consent.details, sort_keys=True),
                table="consents",
                column="details",
                row_id=consent.id,
            )
            if consent.details is not None
            else None
        )
        async with self._tx.write() as tx:
            await tx.consents.add(consent, sealed)
            await audit.record(
                tx,
                self._clock,
                actor,
                "consent.created",
                target_type="consent",
                target_id=consent.id,
                payload=trail(consent),
            )
        return consent

    # -- TPP ---------------------------------------------------------------------------

    async def create_account_access(
        self,
        tpp: Tpp,
        actor: Actor,
        *,
        permissions: list[str],
        expires_at: datetime | None,
        transactions_from: datetime | None,
        transactions_to: datetime | None,
    ) -> Consent:
        now = self._clock.now()
        try:
            granted = validate_permissions(permissions)
            validate_window(now, expires_at, transactions_from, transactions_to)
        except InvalidConsentRequest as exc:
            raise FieldInvalid(exc.message, path=exc.path) from None
        consent = Consent(
            id=new_id("consent"),
            kind=ConsentKind.ACCOUNT_ACCESS,
            partner_id=tpp.partner_id,
            client_id=tpp.client_id,
            status=ConsentStatus.AWAITING_AUTHORISATION,
            created_at=now,
            status_updated_at=now,
            permissions=granted,
            expires_at=expires_at,
            transactions_from=transactions_from,
            transactions_to=transactions_to,
        )
        return await self._add(consent, actor)

    async def create_funds_confirmation(
        self,
        tpp: Tpp,
        actor: Actor,
        *,
        scheme: str,
        identification: str,
        name: str | None,
        expires_at: datetime | None,
    ) -> Consent:
        """A CBPII's consent to ask whether the PSU's account (named by its IBAN) holds
        enough for a payment; the PSU confirms the account is theirs when authorising."""
        now = self._clock.now()
        if scheme != IBAN_SCHEME:
            raise FieldInvalid(
                f"DebtorAccount.SchemeName must be {IBAN_SCHEME}: Pakistani accounts are "
                "named by their IBAN.",
                path="Data.DebtorAccount.SchemeName",
                obie_code="UK.OBIE.Unsupported.AccountIdentifier",
            )
        try:
            iban = parse_iban(identification).value
            validate_window(now, expires_at, None, None)
        except InvalidInput as exc:
            raise FieldInvalid(exc.message, path="Data.DebtorAccount.Identification") from None
        except InvalidConsentRequest as exc:
            raise FieldInvalid(exc.message, path=exc.path) from None
        debtor = {"SchemeName": IBAN_SCHEME, "Identification": iban}
        if name:
            debtor["Name"] = name
        consent = Consent(
            id=new_id("consent"),
            kind=ConsentKind.FUNDS_CONFIRMATION,
            partner_id=tpp.partner_id,
            client_id=tpp.client_id,
            status=ConsentStatus.AWAITING_AUTHORISATION,
            created_at=now,
            status_updated_at=now,
            expires_at=expires_at,
            details={"DebtorAccount": debtor},
        )
        return await self._add(consent, actor)

    async def create_domestic_payment(
        self, tpp: Tpp, actor: Actor, *, initiation: dict[str, Any], risk: dict[str, Any]
    ) -> Consent:
        """A PISP's consent for one payment, exactly as described: the PSU sees the amount
        and the payee, and the payment that uses it must repeat ``initiation`` and
        ``risk`` unchanged."""
        now = self._clock.now()
        check_initiation(initiation)
        consent = Consent(
            id=new_id("consent"),
            kind=ConsentKind.DOMESTIC_PAYMENT,
            partner_id=tpp.partner_id,
            client_id=tpp.client_id,
            status=ConsentStatus.AWAITING_AUTHORISATION,
            created_at=now,
            status_updated_at=now,
            details={"Initiation": initiation, "Risk": risk},
        )
        return await self._add(consent, actor)

    async def consume(self, consent: Consent, actor: Actor) -> Consent:
        """The payment it allowed is being made (in the caller's unit of work)."""
        now = self._clock.now()
        async with self._tx.write() as tx:
            found = await tx.consents.get_for_update(consent.id)
            if found is None:
                raise ResourceNotFound("No such consent.", path="Data.ConsentId")
            current = found[0].as_of(now)
            try:
                used = current.consume(now)
            except ConsentStateError as exc:
                raise InvalidConsentStatus(
                    f"The consent is {exc.status.value}; a payment consent pays once."
                ) from None
            if not await tx.consents.save(used):
                raise Contention("The consent changed meanwhile; try again.")
            await audit.record(
                tx,
                self._clock,
                actor,
                "consent.consumed",
                target_type="consent",
                target_id=consent.id,
                payload=trail(used),
            )
        # Spent: no refresh token may mint another token for it.
        await self._tokens.revoke_consent_tokens(consent.id, consent.client_id, "consumed")
        return replace(used, details=consent.details)

    async def get(self, tpp: Tpp, consent_id: str, kind: ConsentKind) -> Consent:
        async with self._tx.lookup() as tx:
            found = await tx.consents.get(consent_id)
        self._owned(found[0] if found else None, tpp, consent_id, kind)
        opened = await self._opened(found)
        assert opened is not None
        return opened.as_of(self._clock.now())

    async def opened(self, consent_id: str) -> Consent | None:
        """A consent with its details, as it stands now (for the PSU's pages)."""
        async with self._tx.lookup() as tx:
            found = await tx.consents.get(consent_id)
        opened = await self._opened(found)
        return opened.as_of(self._clock.now()) if opened else None

    async def delete(self, tpp: Tpp, consent_id: str, kind: ConsentKind, actor: Actor) -> None:
        """The TPP ends the consent (v3.1.11 DELETE): revoked, its tokens refused from now.
        Deleting a consent already revoked changes nothing."""

        def check(consent: Consent) -> None:
            self._owned(consent, tpp, consent_id, kind)

        await self._end(consent_id, check, actor, "tpp_deleted")

    # -- PSU ---------------------------------------------------------------------------

    async def of_psu(self, psu_id: str) -> list[Consent]:
        async with self._tx.read() as tx:
            found = await tx.consents.of_psu(psu_id, limit=200)
        now = self._clock.now()
        return [consent.as_of(now) for consent in found]

    async def withdraw(self, psu_id: str, consent_id: str, actor: Actor) -> None:
        """The PSU withdraws a consent from the bank's dashboard."""

        def check(consent: Consent) -> None:
            if consent.psu_id != psu_id:
                raise ResourceNotFound("No such consent.", path="ConsentId")

        await self._end(consent_id, check, actor, "psu_withdrawn")

    # -- operators ---------------------------------------------------------------------

    async def revoke_by_operator(self, consent_id: str, actor: Actor) -> None:
        """Risk ends a consent (a compromised TPP, a PSU's complaint by phone): revoked
        and its tokens refused, like a PSU's withdrawal; the TPP hears ``consent.revoked``.
        Revoking one already revoked changes nothing."""

        def check(consent: Consent) -> None:
            return None

        await self._end(consent_id, check, actor, "operator_revoked")

    # -- resource access ---------------------------------------------------------------

    async def usable_for(self, token: BoundToken, kind: ConsentKind) -> Consent:
        """The consent a resource request's token is bound to, if it may be used now."""
        if token.consent_id is None:
            raise ConsentMismatch(
                "This token is not bound to a consent: get one through the PSU's "
                "authorisation (authorization_code grant)."
            )
        async with self._tx.lookup() as tx:
            found = await tx.consents.get(token.consent_id)
        consent = found[0] if found else None
        if consent is None or consent.client_id != token.client_id or consent.kind != kind:
            raise ConsentMismatch("The token's consent does not cover this resource.")
        consent = consent.as_of(self._clock.now())
        if consent.status is not ConsentStatus.AUTHORISED:
            raise InvalidConsentStatus(
                f"The consent is {consent.status.value}"
                + (f" ({consent.ended_reason})" if consent.ended_reason else "")
                + "; ask the PSU for a new one."
            )
        if consent.psu_id != token.subject:
            raise ConsentMismatch("The token's subject is not the PSU who authorised the consent.")
        return consent

    # -- the clock -----------------------------------------------------------------------

    async def end_due(self) -> int:
        """Record the end of consents whose expiry passed or which waited too long for
        their PSU (what :meth:`Consent.as_of` already shows); returns how many."""
        now = self._clock.now()
        async with self._tx.read() as tx:
            due = await tx.consents.due_to_end(now, now - AWAITING_WINDOW, END_BATCH)
        ended = 0
        for consent_id in due:
            async with self._tx.write() as tx:
                found = await tx.consents.get_for_update(consent_id)
                if found is None:
                    continue
                consent = found[0]
                settled = consent.as_of(now)
                if settled.status is consent.status:
                    continue
                if not await tx.consents.save(settled):
                    continue  # changed meanwhile: the next run looks again
                action = (
                    "consent.expired"
                    if settled.status is ConsentStatus.REVOKED
                    else "consent.rejected"
                )
                await audit.record(
                    tx,
                    self._clock,
                    SYSTEM,
                    action,
                    target_type="consent",
                    target_id=consent_id,
                    payload=trail(settled),
                )
                _publish(tx, settled)
                ended += 1
            await self._tokens.revoke_consent_tokens(
                consent_id, settled.client_id, settled.ended_reason or "consent_ended"
            )
        return ended

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def _owned(consent: Consent | None, tpp: Tpp, consent_id: str, kind: ConsentKind) -> Consent:
        if consent is None or consent.client_id != tpp.client_id or consent.kind is not kind:
            raise ResourceNotFound(
                f"No consent {consent_id[:40]} for this client.", path="ConsentId"
            )
        return consent

    async def _end(self, consent_id: str, check: Any, actor: Actor, reason: str) -> None:
        now = self._clock.now()
        async with self._tx.write() as tx:
            found = await tx.consents.get_for_update(consent_id)
            if found is None:
                raise ResourceNotFound(f"No consent {consent_id[:40]}.", path="ConsentId")
            consent = found[0]
            check(consent)
            current = consent.as_of(now)
            if current.status is ConsentStatus.REVOKED:
                if current is not consent:
                    await tx.consents.save(current)
                return
            try:
                ended = current.revoke(now, reason)
            except ConsentStateError as exc:
                raise ConsentStateConflict(
                    f"The consent is {exc.status.value} and cannot be revoked."
                ) from None
            if not await tx.consents.save(ended):
                raise Contention("The consent changed meanwhile; try again.")
            await audit.record(
                tx,
                self._clock,
                actor,
                "consent.revoked",
                target_type="consent",
                target_id=consent_id,
                payload=trail(ended),
            )
            _publish(tx, ended)
        # The consent check already refuses every token bound to it; revoking them too
        # stops a refresh from minting new ones.
        await self._tokens.revoke_consent_tokens(consent_id, ended.client_id, reason)

"""Confirmation of funds (CBPII): whether the account a PSU's consent names holds enough
for a payment, answered yes or no, never with the balance. Each answer is an audit record
(which TPP asked about which consent, for how much, and what it heard)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from amanat.kernel.clock import Clock
from amanat.kernel.errors import InvalidInput
from amanat.kernel.ids import new_id
from amanat.kernel.money import Money
from amanat.openbanking.domain.consents import Consent
from amanat.openbanking.errors import ConsentMismatch, FieldInvalid
from amanat.openbanking.ports import CoreBanking, OpenBankingTx
from amanat.platform.audit import recorder as audit
from amanat.platform.audit.domain import Actor
from amanat.platform.db.ports import TransactionFactory


@dataclass(frozen=True, slots=True)
class FundsAnswer:
    id: str
    consent_id: str
    reference: str
    amount: str
    currency: str
    available: bool
    created_at: datetime


class FundsConfirmationService:
    def __init__(
        self, transactions: TransactionFactory[OpenBankingTx], clock: Clock, bank: CoreBanking
    ) -> None:
        self._tx = transactions
        self._clock = clock
        self._bank = bank

    async def confirm(
        self,
        consent: Consent,
        actor: Actor,
        *,
        consent_id: str,
        reference: str,
        amount: str,
        currency: str,
    ) -> FundsAnswer:
        if consent_id != consent.id:
            raise ConsentMismatch(
                "Data.ConsentId is not the consent this token is bound to.",
                path="Data.ConsentId",
            )
        balances = await self._bank.balances(consent.account_ids)
        if not balances:
            raise ConsentMismatch("The consent's account is no longer held at this bank.")
        (balance,) = balances[:1]
        if currency != balance.currency:
            raise FieldInvalid(
                f"The account holds {balance.currency}; ask in that currency.",
                path="Data.InstructedAmount.Currency",
                obie_code="UK.OBIE.Unsupported.Currency",
            )
        try:
            wanted = Money.from_major_string(amount, currency)
        except InvalidInput as exc:
            raise FieldInvalid(exc.message, path="Data.InstructedAmount.Amount") from None
        answer = FundsAnswer(
            id=new_id("funds_confirmation"),
            consent_id=consent.id,
            reference=reference,
            amount=wanted.to_major_string(),
            currency=currency,
            available=balance.available_minor >= wanted.amount,
            created_at=self._clock.now(),
        )
        async with self._tx.write() as tx:
            await audit.record(
                tx,
                self._clock,
                actor,
                "funds.confirmed",
                target_type="consent",
                target_id=consent.id,
                payload={
                    "funds_confirmation_id": answer.id,
                    "reference": reference,
                    "amount": answer.amount,
                    "currency": currency,
                    "available": answer.available,
                },
            )
        return answer

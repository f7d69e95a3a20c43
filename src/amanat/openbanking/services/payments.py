"""Payment initiation (PISP): a PSU-authorised domestic payment, paid through the
payments core as a Raast payout.

In one unit of work: the bank's core system debits the PSU's account, that money funds the
initiating TPP's balance in amanat's ledger (a ``customer_funding`` journal), the payout
takes it, and the consent is consumed. All of it commits together or not at all, with the
idempotency key of the request (platform/idempotency). The payout then goes to the rail
like any other; its status is the payment's.
"""

from __future__ import annotations

from typing import Any

from amanat.auth.domain import Caller
from amanat.kernel.clock import Clock
from amanat.kernel.errors import InvalidInput, NotFound
from amanat.kernel.money import Money
from amanat.openbanking.domain.consents import Consent
from amanat.openbanking.errors import ConsentMismatch, FieldInvalid, ResourceNotFound
from amanat.openbanking.ports import (
    AccountEntry,
    BankBalance,
    CoreBanking,
    InitiatedPayment,
    OpenBankingTx,
)
from amanat.openbanking.services.consents import IBAN_SCHEME, ConsentService
from amanat.payments.domain.events import PaymentChanged
from amanat.payments.domain.payments import Payment, PaymentStatus
from amanat.payments.errors import LimitExceeded
from amanat.payments.service import AccountIn, PaymentService
from amanat.platform.db.ports import TransactionFactory

RETURN_FUNDS = "openbanking.return_funds"
_UNPAID = frozenset({"failed", "canceled", "expired"})

# amanat's payment status as OBIE's domestic-payment status.
PAYMENT_STATUS = {
    PaymentStatus.PENDING: "AcceptedSettlementInProcess",
    PaymentStatus.PROCESSING: "AcceptedSettlementInProcess",
    PaymentStatus.AWAITING_APPROVAL: "Pending",
    PaymentStatus.SUCCEEDED: "AcceptedCreditSettlementCompleted",
    PaymentStatus.FAILED: "Rejected",
    PaymentStatus.CANCELED: "Rejected",
    PaymentStatus.EXPIRED: "Rejected",
}


def minor(initiation: dict[str, Any]) -> int:
    return Money.from_major_string(initiation["InstructedAmount"]["Amount"], "PKR").amount


class PaymentInitiationService:
    def __init__(
        self,
        transactions: TransactionFactory[OpenBankingTx],
        clock: Clock,
        bank: CoreBanking,
        payments: PaymentService,
        consents: ConsentService,
    ) -> None:
        self._tx = transactions
        self._clock = clock
        self._bank = bank
        self._payments = payments
        self._consents = consents

    async def check_payable(self, caller: Caller, initiation: dict[str, Any]) -> None:
        """Refuse, before the customer is asked, a payment the PISP could never make: one
        over its per-transaction limit. (A malformed amount is the consent's to refuse.)"""
        try:
            amount = minor(initiation)
        except InvalidInput:
            return
        try:
            await self._payments.check_limit(caller, amount)
        except LimitExceeded as exc:
            raise FieldInvalid(
                exc.message, path="Data.Initiation.InstructedAmount.Amount"
            ) from None

    async def funds_available(self, consent: Consent) -> tuple[bool, BankBalance | None]:
        """Whether the authorised account covers the consent's amount now."""
        initiation = (consent.details or {}).get("Initiation") or {}
        balances = await self._bank.balances(consent.account_ids)
        if not balances:
            return False, None
        return balances[0].available_minor >= minor(initiation), balances[0]

    async def initiate(
        self,
        caller: Caller,
        consent: Consent,
        *,
        consent_id: str,
        initiation: dict[str, Any],
        risk: dict[str, Any],
    ) -> Payment:
        """Run inside the request's unit of work (``IdempotencyService.run``)."""
        if consent_id != consent.id:
            raise ConsentMismatch(
                "Data.ConsentId is not the consent this token is bound to.",
                path="Data.ConsentId",
            )
        details = consent.details or {}
        if initiation != details.get("Initiation"):
            raise ConsentMismatch(
                "Data.Initiation must be exactly the consent's Initiation.",
                path="Data.Initiation",
            )
        if risk != details.get("Risk"):
            raise ConsentMismatch("Risk must be exactly the consent's Risk.", path="Risk")
        amount = minor(initiation)
        creditor = initiation["CreditorAccount"]
        iban = creditor["Identification"] if creditor["SchemeName"] == IBAN_SCHEME else None
        raast = None if iban else creditor["Identification"]
        remittance = initiation.get("RemittanceInformation") or {}
        reference = remittance.get("Reference") or initiation["EndToEndIdentification"]
        funding = await self._bank.debit(
            AccountEntry(
                account_id=consent.account_ids[0],
                amount_minor=amount,
                currency="PKR",
                description=f"RAAST TO {creditor['Name']} {reference}"[:140],
                counterparty_name=creditor["Name"],
                counterparty_iban=iban,
                reference=consent.id,
            )
        )
        await self._payments.fund_from_bank_customer(caller, amount, "PKR", funding)
        payment = await self._payments.create_payout(
            caller,
            amount=amount,
            currency="PKR",
            creditor=AccountIn(iban=iban, raast_id=raast, name=creditor["Name"]),
            reference=reference[:35],
            description=remittance.get("Unstructured"),
            metadata={},
            funded_by=funding,
        )
        async with self._tx.write() as tx:
            await tx.initiated_payments.add(
                InitiatedPayment(
                    payment_id=payment.id,
                    consent_id=consent.id,
                    partner_id=caller.partner_id,
                    account_id=consent.account_ids[0],
                    amount_minor=amount,
                    currency="PKR",
                    created_at=self._clock.now(),
                )
            )
        await self._consents.consume(consent, caller.actor)
        return payment

    # -- a payout that ended unpaid: the customer's money goes back --------------------

    async def on_payment_changed(self, event: PaymentChanged, tx: OpenBankingTx) -> None:
        """Runs in the transaction that changed the payment: when an initiated payment's
        payout ends unpaid, the job that gives the customer their money back commits with
        that change (it can neither be lost nor run twice: the job's own finish commits
        with the return)."""
        if event.view.get("status") not in _UNPAID:
            return
        initiated = await tx.initiated_payments.get(event.payment_id)
        if initiated is None or initiated.returned_at is not None:
            return  # not paid with a customer's money (whatever its metadata says)
        await tx.outbox.enqueue(RETURN_FUNDS, event.payment_id, {}, self._clock.now())

    async def return_funds(self, payment_id: str) -> None:
        """In the job's unit of work: the payout's amount already left the PISP's balance
        with its failure (payments' side); here it goes back into the customer's account,
        with a statement line saying why, once."""
        async with self._tx.write() as tx:
            initiated = await tx.initiated_payments.get(payment_id, for_update=True)
            if initiated is None or initiated.returned_at is not None:
                return
            consent = await self._consents.opened(initiated.consent_id)
            initiation = ((consent.details if consent else None) or {}).get("Initiation") or {}
            creditor = initiation.get("CreditorAccount") or {}
            reference = (initiation.get("RemittanceInformation") or {}).get("Reference") or ""
            await self._bank.credit(
                AccountEntry(
                    account_id=initiated.account_id,
                    amount_minor=initiated.amount_minor,
                    currency=initiated.currency,
                    description=f"RAAST RETURN {creditor.get('Name', '')} {reference}",
                    counterparty_name=creditor.get("Name"),
                    counterparty_iban=None,
                    reference=payment_id,
                )
            )
            await tx.initiated_payments.mark_returned(payment_id, self._clock.now())

    async def payment(self, partner_id: str, payment_id: str) -> tuple[Payment, str]:
        """A TPP's initiated payment and the consent it used."""
        async with self._tx.lookup() as tx:
            initiated = await tx.initiated_payments.get(payment_id)
        if initiated is None or initiated.partner_id != partner_id:
            raise ResourceNotFound("No such domestic payment.", path="DomesticPaymentId")
        try:
            payment = await self._payments.get(partner_id, payment_id)
        except NotFound:
            raise ResourceNotFound("No such domestic payment.", path="DomesticPaymentId") from None
        return payment, initiated.consent_id

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
from amanat.kernel.errors import NotFound
from amanat.kernel.money import Money
from amanat.openbanking.domain.consents import Consent
from amanat.openbanking.errors import ConsentMismatch, ResourceNotFound
from amanat.openbanking.ports import AccountEntry, BankBalance, CoreBanking, OpenBankingTx
from amanat.openbanking.services.consents import IBAN_SCHEME, ConsentService
from amanat.payments.domain.events import PaymentChanged
from amanat.payments.domain.payments import Payment, PaymentStatus
from amanat.payments.service import AccountIn, PaymentService
from amanat.platform.audit.domain import SYSTEM

CONSENT_KEY = "obie_consent_id"
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
        clock: Clock,
        bank: CoreBanking,
        payments: PaymentService,
        consents: ConsentService,
    ) -> None:
        self._clock = clock
        self._bank = bank
        self._payments = payments
        self._consents = consents

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
            metadata={
                CONSENT_KEY: consent.id,
                "obie_end_to_end_id": initiation["EndToEndIdentification"],
                "obie_instruction_id": initiation["InstructionIdentification"],
            },
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
        if not (event.view.get("metadata") or {}).get(CONSENT_KEY):
            return
        await tx.outbox.enqueue(RETURN_FUNDS, event.payment_id, {}, self._clock.now())

    async def return_funds(self, payment_id: str) -> None:
        """In the job's unit of work: out of the PISP's balance, back into the customer's
        account, with a statement line saying why."""
        payment = await self._payments.return_to_bank_customer(payment_id, SYSTEM)
        consent = await self._consents.opened(str(payment.metadata[CONSENT_KEY]))
        if consent is None or not consent.account_ids:
            raise ResourceNotFound("The payment's consent is gone.")
        creditor = ((consent.details or {}).get("Initiation") or {}).get("CreditorAccount") or {}
        await self._bank.credit(
            AccountEntry(
                account_id=consent.account_ids[0],
                amount_minor=payment.amount.amount,
                currency=payment.amount.currency,
                description=f"RAAST RETURN {creditor.get('Name', '')} {payment.reference or ''}",
                counterparty_name=creditor.get("Name"),
                counterparty_iban=None,
                reference=payment.id,
            )
        )

    async def payment(self, partner_id: str, payment_id: str) -> tuple[Payment, str]:
        """A TPP's initiated payment and the consent it used."""
        try:
            payment = await self._payments.get(partner_id, payment_id)
        except NotFound:
            raise ResourceNotFound("No such domestic payment.", path="DomesticPaymentId") from None
        consent_id = payment.metadata.get(CONSENT_KEY)
        if not consent_id:
            raise ResourceNotFound("No such domestic payment.", path="DomesticPaymentId")
        return payment, str(consent_id)

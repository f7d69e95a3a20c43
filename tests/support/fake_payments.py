"""Shared by the fast payments tests: a caller, accounts and small steps over the fakes."""

from __future__ import annotations

from amanat.payments.domain.ledger import merchant_account
from amanat.payments.domain.payments import Payment
from amanat.payments.fakes import FakePayments
from amanat.payments.service import AccountIn, Caller
from amanat.platform.audit.domain import Actor

PARTNER = "partner_01"
CALLER = Caller(PARTNER, "client_01", Actor("client", "client_01"))
OTHER = Caller("partner_02", "client_02", Actor("client", "client_02"))
CREDITOR = AccountIn(iban="PK36SCBL0000001123456702", raast_id=None, name="Ayesha Khan")
DEBTOR = AccountIn(iban=None, raast_id="03001234567", name="Bilal Ahmed")
MERCHANT = merchant_account(PARTNER)


async def payout(fakes: FakePayments, amount: int, caller: Caller = CALLER) -> Payment:
    return await fakes.service.create_payout(
        caller,
        amount=amount,
        currency="PKR",
        creditor=CREDITOR,
        reference=None,
        description=None,
        metadata={},
    )


async def collection(fakes: FakePayments, amount: int) -> Payment:
    return await fakes.service.create_collection(
        CALLER,
        amount=amount,
        currency="PKR",
        debtor=DEBTOR,
        reference=None,
        description=None,
        metadata={},
        expires_in=None,
    )


async def rail(fakes: FakePayments, payment_id: str, status: str, sequence: int) -> str:
    return await fakes.service.apply_rail_status(
        payment_id, status, sequence=sequence, cause="test"
    )

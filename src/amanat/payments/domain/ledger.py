"""Double-entry ledger rules.

A journal is a set of postings whose amounts sum to zero per currency (debits positive,
credits negative). Journals are immutable; a correction is a new journal. Money in flight
is a hold: reserved on creation, posted on success, voided on failure or cancellation.
``available = posted balance - held`` and may never go below the account's floor.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum

from amanat.kernel.errors import InvalidInput
from amanat.payments.domain.errors import PaymentsError


class InsufficientFunds(PaymentsError):
    code = "insufficient_funds"


class AccountKind(StrEnum):
    ASSET = "asset"  # debit-normal: the platform's money at the rail
    LIABILITY = "liability"  # credit-normal: what the platform owes a merchant
    EQUITY = "equity"  # credit-normal: funding (sandbox top-ups)


RAAST_SETTLEMENT = "raast_settlement"
SANDBOX_FUNDING = "sandbox_funding"
# Money the bank has taken from its own customers' accounts (its core system debited them)
# to pay out over the rail: an open-banking payment initiation funds its payout from here.
BANK_CUSTOMER_FUNDS = "bank_customer_funds"
# What the platform earns: the fees a settlement cycle charges merchants.
PLATFORM_FEES = "platform_fees"
# Where a reconciliation difference the platform absorbs goes (a write-off): what the bank
# or the rail reported and the ledger did not, or the reverse.
RECONCILIATION_DIFFERENCES = "reconciliation_differences"
# What the bank kept from a batch it credited (its charges, net of which it booked).
BANK_CHARGES = "bank_charges"


def merchant_account(partner_id: str) -> str:
    return f"merchant:{partner_id}"


def dispute_held_account(partner_id: str) -> str:
    """A merchant's money held for its collections under dispute (a liability: it is owed
    to the merchant or to the payer, whichever the dispute's outcome names). Apart from
    ``merchant:…`` so a settlement shows the hold as money leaving the balance."""
    return f"dispute_held:{partner_id}"


@dataclass(frozen=True, slots=True)
class Posting:
    account: str
    amount: int  # + debit, - credit, minor units
    currency: str


@dataclass(frozen=True, slots=True)
class Journal:
    id: str
    kind: str
    reference: str
    postings: tuple[Posting, ...]

    def __post_init__(self) -> None:
        if len(self.postings) < 2:
            raise InvalidInput("A journal needs at least two postings.", code="unbalanced")
        sums: dict[str, int] = defaultdict(int)
        for posting in self.postings:
            if posting.amount == 0:
                raise InvalidInput("A posting cannot be zero.", code="unbalanced")
            sums[posting.currency] += posting.amount
        if any(total != 0 for total in sums.values()):
            raise InvalidInput(
                f"Journal {self.kind} does not balance: {dict(sums)}.", code="unbalanced"
            )


def credit_normal_balance(postings_total: int) -> int:
    """The balance of a credit-normal account (merchant) from the sum of its postings."""
    return -postings_total


def transfer(
    journal_id: str,
    kind: str,
    reference: str,
    *,
    debit: str,
    credit: str,
    amount: int,
    currency: str,
) -> Journal:
    if amount <= 0:
        raise InvalidInput("Journal amounts are positive.", code="invalid_amount")
    return Journal(
        journal_id,
        kind,
        reference,
        (Posting(debit, amount, currency), Posting(credit, -amount, currency)),
    )


def payout_settled(
    journal_id: str, payment_id: str, partner_id: str, amount: int, currency: str
) -> Journal:
    """Money leaves the merchant's balance through the rail."""
    return transfer(
        journal_id,
        "payout",
        payment_id,
        debit=merchant_account(partner_id),
        credit=RAAST_SETTLEMENT,
        amount=amount,
        currency=currency,
    )


def collection_settled(
    journal_id: str, payment_id: str, partner_id: str, amount: int, currency: str
) -> Journal:
    return transfer(
        journal_id,
        "collection",
        payment_id,
        debit=RAAST_SETTLEMENT,
        credit=merchant_account(partner_id),
        amount=amount,
        currency=currency,
    )


def refund_settled(
    journal_id: str, refund_id: str, partner_id: str, amount: int, currency: str
) -> Journal:
    return transfer(
        journal_id,
        "refund",
        refund_id,
        debit=merchant_account(partner_id),
        credit=RAAST_SETTLEMENT,
        amount=amount,
        currency=currency,
    )


def sandbox_top_up(
    journal_id: str, top_up_id: str, partner_id: str, amount: int, currency: str
) -> Journal:
    return transfer(
        journal_id,
        "top_up",
        top_up_id,
        debit=SANDBOX_FUNDING,
        credit=merchant_account(partner_id),
        amount=amount,
        currency=currency,
    )


def customer_funded(
    journal_id: str, funding_id: str, partner_id: str, amount: int, currency: str
) -> Journal:
    """The bank debited a customer's account for a payment the partner initiated: the
    partner's balance holds that money until the payout takes it."""
    return transfer(
        journal_id,
        "customer_funding",
        funding_id,
        debit=BANK_CUSTOMER_FUNDS,
        credit=merchant_account(partner_id),
        amount=amount,
        currency=currency,
    )


def customer_returned(
    journal_id: str, payment_id: str, partner_id: str, amount: int, currency: str
) -> Journal:
    """A payout the bank customer funded failed: the money goes back to them."""
    return transfer(
        journal_id,
        "customer_return",
        payment_id,
        debit=merchant_account(partner_id),
        credit=BANK_CUSTOMER_FUNDS,
        amount=amount,
        currency=currency,
    )


def settlement_fee(
    journal_id: str, settlement_id: str, partner_id: str, amount: int, currency: str
) -> Journal:
    """A settlement cycle's fees leave the merchant's balance for the platform's."""
    return transfer(
        journal_id,
        "settlement_fee",
        settlement_id,
        debit=merchant_account(partner_id),
        credit=PLATFORM_FEES,
        amount=amount,
        currency=currency,
    )


def reconciliation_difference(
    journal_id: str, break_id: str, delta: int, currency: str, *, charged_to: str | None
) -> Journal:
    """Brings the platform's account at the rail in line with what the other side
    reported: ``delta`` = their figure minus the ledger's (positive: they hold more). The
    other leg is the merchant's balance (``charged_to``: an adjustment) or the platform's
    own (a write-off)."""
    other = merchant_account(charged_to) if charged_to else RECONCILIATION_DIFFERENCES
    kind = "recon_adjustment" if charged_to else "recon_write_off"
    if delta > 0:
        return transfer(
            journal_id,
            kind,
            break_id,
            debit=RAAST_SETTLEMENT,
            credit=other,
            amount=delta,
            currency=currency,
        )
    return transfer(
        journal_id,
        kind,
        break_id,
        debit=other,
        credit=RAAST_SETTLEMENT,
        amount=-delta,
        currency=currency,
    )


def bank_charges(journal_id: str, match_id: str, amount: int, currency: str) -> Journal:
    """The bank booked a batch net of its charges: the platform's account at the rail
    holds that much less than the payments it settled."""
    return transfer(
        journal_id,
        "bank_charges",
        match_id,
        debit=BANK_CHARGES,
        credit=RAAST_SETTLEMENT,
        amount=amount,
        currency=currency,
    )


# -- disputes (disputes/domain/disputes.py says when each is posted) -----------------------


def dispute_hold(
    journal_id: str, dispute_id: str, partner_id: str, amount: int, currency: str
) -> Journal:
    """A disputed collection's amount leaves the merchant's available balance until the
    dispute is decided."""
    return transfer(
        journal_id,
        "dispute_hold",
        dispute_id,
        debit=merchant_account(partner_id),
        credit=dispute_held_account(partner_id),
        amount=amount,
        currency=currency,
    )


def dispute_release(
    journal_id: str, dispute_id: str, partner_id: str, amount: int, currency: str
) -> Journal:
    """The merchant won (or the dispute was withdrawn): the held money comes back."""
    return transfer(
        journal_id,
        "dispute_release",
        dispute_id,
        debit=dispute_held_account(partner_id),
        credit=merchant_account(partner_id),
        amount=amount,
        currency=currency,
    )


def dispute_reversal(
    journal_id: str, dispute_id: str, partner_id: str, amount: int, currency: str
) -> Journal:
    """The merchant lost (or accepted): the held money goes back to the payer, out
    through the rail."""
    return transfer(
        journal_id,
        "dispute_reversal",
        dispute_id,
        debit=dispute_held_account(partner_id),
        credit=RAAST_SETTLEMENT,
        amount=amount,
        currency=currency,
    )


def disputed_payout_returned(
    journal_id: str, dispute_id: str, partner_id: str, amount: int, currency: str
) -> Journal:
    """A payout dispute was won (the payee never got the money): the rail returns the
    amount and it comes back to the merchant's balance; a ``dispute_reversal`` of the
    payout."""
    return transfer(
        journal_id,
        "dispute_reversal",
        dispute_id,
        debit=RAAST_SETTLEMENT,
        credit=merchant_account(partner_id),
        amount=amount,
        currency=currency,
    )


@dataclass(frozen=True, slots=True)
class Shard:
    """One slice of a merchant's balance; holds are taken from one slice at a time."""

    index: int
    posted: int  # credit-normal balance of this slice
    held: int

    @property
    def available(self) -> int:
        return self.posted - self.held


def rebalanced(shards: list[Shard]) -> list[Shard]:
    """Spread the available money evenly; total posted and each slice's holds unchanged."""
    available = sum(s.available for s in shards)
    share, remainder = divmod(available, len(shards))
    return [
        Shard(s.index, s.held + share + (remainder if i == 0 else 0), s.held)
        for i, s in enumerate(shards)
    ]


def hold_on(shards: list[Shard], amount: int, start: int) -> tuple[list[Shard], int]:
    """Hold ``amount`` on one of an account's shards, as the ledger's ``reserve`` does:
    the first shard from ``start`` on that covers it; else, if the shards cover it
    together, their money evened out (or, if that is still not enough on one, all put on
    one) first. Returns the shards after the hold and the shard held on; raises
    InsufficientFunds, changing nothing, when the account cannot cover the amount."""
    count = len(shards)
    for offset in range(count):
        i = (start + offset) % count
        if shards[i].available >= amount:
            after = list(shards)
            after[i] = Shard(shards[i].index, shards[i].posted, shards[i].held + amount)
            return after, shards[i].index
    total = sum(s.available for s in shards)
    if total < amount:
        raise InsufficientFunds("The available balance does not cover this amount.")
    even = rebalanced(shards)
    best = max(even, key=lambda s: s.available)
    if best.available < amount:
        even = [
            Shard(s.index, s.held + (total if s.index == best.index else 0), s.held) for s in shards
        ]
    return [
        Shard(s.index, s.posted, s.held + amount) if s.index == best.index else s for s in even
    ], best.index

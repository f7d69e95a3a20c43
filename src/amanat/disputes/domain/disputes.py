"""A dispute, its state machine and the money it moves.

States::

    needs_response ──respond──▶ under_review ──win──▶ won
          │                        │  └─────lose──▶ lost
          ├──expire (deadline)──▶ lost
          ├──accept──▶ accepted ◀──accept──┤
          └──withdraw──▶ withdrawn ◀──withdraw──┘

A transition is legal only if :data:`TRANSITIONS` allows it; anything else raises
:class:`DisputeTransitionRefused`, so a dispute never skips a state (``won`` only after a
response), never goes back, and a closed dispute stays closed. Every applied transition
bumps ``version``.

Money (:class:`Funds`). A collection dispute takes the disputed amount out of the
merchant's available balance into a dispute-held account when it opens; if the balance
cannot cover all of it, what is available is held and the rest is the dispute's
``shortfall``. A lost or accepted dispute first holds what it can of the shortfall, then
reverses everything held to the payer; a won or withdrawn one releases what is held back
to the merchant. A payout dispute (the merchant says the payee never got the money) holds
nothing; if it is won, the amount comes back to the merchant from the rail. At every step
``held_total == held + released + reversed`` and ``held_total + shortfall == amount``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum

from amanat.disputes.domain.errors import DisputeTransitionRefused
from amanat.kernel.errors import InvalidInput


class DisputeStatus(StrEnum):
    NEEDS_RESPONSE = "needs_response"
    UNDER_REVIEW = "under_review"
    WON = "won"
    LOST = "lost"
    ACCEPTED = "accepted"
    WITHDRAWN = "withdrawn"


S = DisputeStatus
OPEN = frozenset({S.NEEDS_RESPONSE, S.UNDER_REVIEW})
TERMINAL = frozenset({S.WON, S.LOST, S.ACCEPTED, S.WITHDRAWN})


class DisputeReason(StrEnum):
    NOT_RECEIVED = "not_received"
    DUPLICATE = "duplicate"
    FRAUD = "fraud"
    WRONG_AMOUNT = "wrong_amount"
    UNAUTHORISED = "unauthorised"
    SERVICE_NOT_PROVIDED = "service_not_provided"
    OTHER = "other"


REASONS: dict[DisputeReason, str] = {
    DisputeReason.NOT_RECEIVED: "The money did not arrive: the payee of a payout says it "
    "never reached them, or the payer of a collection never got what they paid for.",
    DisputeReason.DUPLICATE: "The payer was charged twice for one purchase.",
    DisputeReason.FRAUD: "The payer says the payment was made by a fraudster (stolen "
    "credentials, a scam).",
    DisputeReason.WRONG_AMOUNT: "The amount differs from what was agreed.",
    DisputeReason.UNAUTHORISED: "The account holder did not authorise the payment (no "
    "fraud claimed: an approval given by mistake, a family member).",
    DisputeReason.SERVICE_NOT_PROVIDED: "The goods or service paid for were not provided, "
    "or not as described.",
    DisputeReason.OTHER: "Anything else; the explanation says what.",
}


class Action(StrEnum):
    RESPOND = "respond"  # the merchant (or an operator for it) answers: under review
    ACCEPT = "accept"  # the merchant accepts the dispute: the payer gets the money
    WITHDRAW = "withdraw"  # whoever opened it takes it back
    WIN = "win"  # decided for the merchant
    LOSE = "lose"  # decided against the merchant
    EXPIRE = "expire"  # nobody answered by the respond-by date: lost


TRANSITIONS: dict[DisputeStatus, dict[Action, DisputeStatus]] = {
    S.NEEDS_RESPONSE: {
        Action.RESPOND: S.UNDER_REVIEW,
        Action.ACCEPT: S.ACCEPTED,
        Action.WITHDRAW: S.WITHDRAWN,
        Action.EXPIRE: S.LOST,
    },
    S.UNDER_REVIEW: {
        Action.ACCEPT: S.ACCEPTED,
        Action.WITHDRAW: S.WITHDRAWN,
        Action.WIN: S.WON,
        Action.LOSE: S.LOST,
    },
}

# How far along a status is: a transition only ever moves to a higher rank.
RANK: dict[DisputeStatus, int] = {
    S.NEEDS_RESPONSE: 0,
    S.UNDER_REVIEW: 1,
    **dict.fromkeys(TERMINAL, 2),
}


def next_status(status: DisputeStatus, action: Action) -> DisputeStatus:
    """Where ``action`` takes a dispute in ``status``; refuses what the table does not allow."""
    target = TRANSITIONS.get(status, {}).get(action)
    if target is None:
        if status in TERMINAL:
            raise DisputeTransitionRefused(
                f"The dispute is closed ({status.value}); it cannot {action.value} any more."
            )
        raise DisputeTransitionRefused(
            f"A dispute that is {status.value} cannot {action.value}"
            + (" before the merchant has responded." if action in (Action.WIN,) else ".")
        )
    return target


class Opener(StrEnum):
    """Who opened a dispute (and so who may withdraw it)."""

    MERCHANT = "merchant"
    OPERATOR = "operator"
    RAIL = "rail"


class PaymentKind(StrEnum):
    COLLECTION = "collection"
    PAYOUT = "payout"


# -- money ---------------------------------------------------------------------------------


class Step(StrEnum):
    """One ledger movement a dispute makes (payments' journal kinds in brackets)."""

    HOLD = "hold"  # merchant -> dispute-held (dispute_hold)
    RELEASE = "release"  # dispute-held -> merchant (dispute_release)
    REVERSE = "reverse"  # dispute-held -> the rail, to the payer (dispute_reversal)
    RETURN = "return"  # the rail -> merchant: a disputed payout came back (dispute_reversal)


@dataclass(frozen=True, slots=True)
class Funds:
    """What a dispute has moved, in minor units of the dispute's currency."""

    amount: int
    held_total: int = 0  # ever moved out of the merchant's balance into dispute-held
    released: int = 0  # back to the merchant (won, withdrawn)
    reversed: int = 0  # to the payer (lost, accepted)
    returned: int = 0  # a won payout dispute: back from the rail to the merchant

    def __post_init__(self) -> None:
        if self.amount <= 0:
            raise InvalidInput("A dispute's amount is positive.", code="invalid_amount")
        parts = (self.held_total, self.released, self.reversed, self.returned)
        if min(parts) < 0 or self.held_total > self.amount or self.held < 0:
            raise ValueError(f"inconsistent dispute funds: {self!r}")
        if self.returned not in (0, self.amount) or (self.returned and self.held_total):
            raise ValueError(f"inconsistent dispute funds: {self!r}")

    @property
    def held(self) -> int:
        """In the dispute-held account now."""
        return self.held_total - self.released - self.reversed

    @property
    def shortfall(self) -> int:
        """What a collection dispute could not take from the merchant's balance (yet)."""
        return self.amount - self.held_total

    def after(self, step: Step, moved: int) -> Funds:
        """The funds once ``step`` moved ``moved`` (a hold may move less than asked)."""
        if moved < 0:
            raise ValueError("a movement is not negative")
        if step is Step.HOLD:
            return replace(self, held_total=self.held_total + moved)
        if step is Step.RELEASE:
            return replace(self, released=self.released + moved)
        if step is Step.REVERSE:
            return replace(self, reversed=self.reversed + moved)
        return replace(self, returned=self.returned + moved)

    def asked(self, step: Step) -> int:
        """How much ``step`` moves: a hold asks for the shortfall; a release or reversal
        moves all that is held; a return gives back the whole amount."""
        if step is Step.HOLD:
            return self.shortfall
        if step in (Step.RELEASE, Step.REVERSE):
            return self.held
        return self.amount


def opening_steps(kind: PaymentKind) -> tuple[Step, ...]:
    """What opening a dispute on a payment of ``kind`` moves."""
    return (Step.HOLD,) if kind is PaymentKind.COLLECTION else ()


def closing_steps(kind: PaymentKind, outcome: DisputeStatus) -> tuple[Step, ...]:
    """What closing a dispute with ``outcome`` moves, in order."""
    if outcome not in TERMINAL:
        return ()
    if kind is PaymentKind.COLLECTION:
        if outcome in (S.LOST, S.ACCEPTED):
            # What the balance could not cover at the opening is taken now, if it can be,
            # then everything held goes to the payer.
            return (Step.HOLD, Step.REVERSE)
        return (Step.RELEASE,)
    return (Step.RETURN,) if outcome is S.WON else ()


def consumes(kind: PaymentKind, status: DisputeStatus, amount: int) -> int:
    """How much of its payment a dispute takes from what can still be disputed: all of it
    while open, and for good once its money went back (a collection lost or accepted, a
    payout won); nothing once it ended with the money where it was."""
    if status in OPEN:
        return amount
    if kind is PaymentKind.COLLECTION and status in (S.LOST, S.ACCEPTED):
        return amount
    if kind is PaymentKind.PAYOUT and status is S.WON:
        return amount
    return 0


# -- the dispute ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dispute:
    id: str
    partner_id: str
    payment_id: str
    payment_type: PaymentKind
    status: DisputeStatus
    reason: DisputeReason
    currency: str
    funds: Funds
    opened_by: Opener
    opener_id: str
    respond_by: date
    decide_by: date
    version: int
    created_at: datetime
    updated_at: datetime
    rail_dispute_id: str | None = None
    response_text: str | None = None
    """The merchant's explanation, sealed (encrypted under the fields key)."""
    responded_at: datetime | None = None
    responded_by: str | None = None
    """``merchant`` or ``operator``."""
    close_note: str | None = None
    closed_at: datetime | None = None

    @property
    def amount(self) -> int:
        return self.funds.amount

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def is_closed(self) -> bool:
        return self.status in TERMINAL

    def to(
        self,
        action: Action,
        *,
        at: datetime,
        funds: Funds | None = None,
        note: str | None = None,
    ) -> Dispute:
        """The dispute after ``action``: the next status (or DisputeTransitionRefused),
        its money as moved, and one version more."""
        target = next_status(self.status, action)
        return replace(
            self,
            status=target,
            funds=funds or self.funds,
            version=self.version + 1,
            updated_at=at,
            close_note=note if target in TERMINAL else self.close_note,
            closed_at=at if target in TERMINAL else self.closed_at,
        )

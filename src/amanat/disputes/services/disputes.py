"""Disputes as use cases: open, add evidence, respond, accept, withdraw, decide, expire,
and what merchants and operations read of them.

Every change is one unit of work: the dispute's new version, its history row, the ledger
journals it posts (through the payments capability's service, joined to the same
transaction), its ``dispute.*`` event and its audit record commit together or not at all.
A change is applied with a compare-and-set on the dispute's version under a row lock, so
two requests (or two workers expiring disputes) never both move one dispute on; the
second sees the new status and is refused, or skips it.
"""

from __future__ import annotations

import base64
import binascii
import builtins
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from amanat.disputes import views
from amanat.disputes.domain import evidence as evidence_rules
from amanat.disputes.domain.deadlines import (
    DeadlinePolicy,
    Urgency,
    deadlines,
    is_overdue,
    urgency,
    warn_from,
)
from amanat.disputes.domain.disputes import (
    OPEN,
    Action,
    Dispute,
    DisputeReason,
    DisputeStatus,
    Funds,
    Opener,
    PaymentKind,
    Step,
    closing_steps,
    consumes,
    next_status,
    opening_steps,
)
from amanat.disputes.domain.errors import (
    DecisionNeedsAnotherOperator,
    DisputeAmountExceedsRemaining,
    DisputeTransitionRefused,
    EvidenceLimitReached,
    EvidenceNotAccepted,
    PaymentNotDisputable,
    ResponseDeadlinePassed,
    WithdrawalRefused,
)
from amanat.disputes.domain.events import CLOSED, OPENED, UPDATED
from amanat.disputes.ports import DisputesTx, EvidenceMeta, Payments, Transition
from amanat.kernel.business_days import BusinessCalendar
from amanat.kernel.clock import Clock, karachi_date
from amanat.kernel.errors import Contention, DomainError, InvalidInput, NotFound
from amanat.kernel.ids import new_id
from amanat.platform.audit import recorder as audit
from amanat.platform.audit.domain import SYSTEM, Actor
from amanat.platform.db.ports import UnitOfWork
from amanat.platform.protection.service import DataProtectionService
from amanat.reconciliation.domain.events import PartnerNotice

MAX_EXPLANATION = 5000
AUDIT_ACTIONS = {
    Action.RESPOND: "dispute.responded",
    Action.ACCEPT: "dispute.accepted",
    Action.WITHDRAW: "dispute.withdrawn",
    Action.WIN: "dispute.decided",
    Action.LOSE: "dispute.decided",
    Action.EXPIRE: "dispute.expired",
}
NOTE_LENGTH = (3, 500)
NO_RESPONSE = "no response by deadline"
REQUEST_ID_WIDTH = 128


@dataclass(frozen=True, slots=True)
class DisputesConfig:
    deadlines: DeadlinePolicy = field(default_factory=DeadlinePolicy)
    evidence_max_bytes: int = 5 * 1024 * 1024
    max_evidence_files: int = 10


_DEADLINE_PASSED = (
    "The respond-by date ({}) has passed: the dispute is being closed as lost for want of a "
    "response."
)


@dataclass(frozen=True, slots=True)
class DisputeDetail:
    """A dispute with its evidence (metadata only), its history of transitions and the
    response's explanation in clear."""

    dispute: Dispute
    evidence: tuple[EvidenceMeta, ...]
    history: tuple[Transition, ...]
    explanation: str | None

    def view(self) -> dict[str, Any]:
        """As the merchant sees it (``GET /v1/disputes/{id}``, the ``dispute.*`` events)."""
        return views.dispute_view(self.dispute, self.evidence, self.explanation)

    def operator_view(self) -> dict[str, Any]:
        """As operations sees it: with the partner, the history and who did what."""
        return views.operator_view(self.dispute, self.evidence, self.explanation, self.history)


@dataclass(frozen=True, slots=True)
class DisputePage:
    items: list[DisputeDetail]
    has_more: bool
    next_cursor: tuple[datetime, str] | None
    """Pass as ``cursor`` for the next page (newest first); None on the last page."""


@dataclass(frozen=True, slots=True)
class NearDeadline:
    dispute: Dispute
    urgency: Urgency


@dataclass(frozen=True, slots=True)
class EvidenceFile:
    meta: EvidenceMeta
    content: bytes


@asynccontextmanager
async def _unit_of_work(transactions: UnitOfWork[DisputesTx]) -> AsyncIterator[DisputesTx]:
    """One write transaction that payments' ledger calls join: the caller's when this runs
    inside one (an idempotent partner request runs its operation in one), else a new
    one."""
    async with AsyncExitStack() as stack:
        try:
            tx = await stack.enter_async_context(transactions.atomic())
        except RuntimeError:  # atomic() does not nest: join the unit of work already open
            tx = await stack.enter_async_context(transactions.write())
        yield tx


def _kind(payment_type: str) -> PaymentKind:
    try:
        return PaymentKind(payment_type)
    except ValueError:
        raise PaymentNotDisputable(
            f"A {payment_type} cannot be disputed: dispute the collection it refunds, or a payout."
        ) from None


def _reason(value: str) -> DisputeReason:
    try:
        return DisputeReason(value)
    except ValueError:
        raise InvalidInput(
            f"reason must be one of {', '.join(r.value for r in DisputeReason)}.",
            reason="unknown_reason",
        ) from None


def _explanation(text: str) -> str:
    text = text.strip()
    if not 1 <= len(text) <= MAX_EXPLANATION:
        raise InvalidInput(
            f"The explanation is 1 to {MAX_EXPLANATION} characters.",
            reason="explanation_length",
        )
    return text


def _note(text: str) -> str:
    text = text.strip()
    low, high = NOTE_LENGTH
    if not low <= len(text) <= high:
        raise InvalidInput(
            f"Give a note of {low} to {high} characters: it is kept with the decision.",
            reason="note_length",
        )
    return text


class DisputeService:
    def __init__(
        self,
        transactions: UnitOfWork[DisputesTx],
        clock: Clock,
        protection: DataProtectionService,
        payments: Payments,
        calendar: BusinessCalendar,
        config: DisputesConfig | None = None,
    ) -> None:
        self._tx = transactions
        self._clock = clock
        self._protection = protection
        self._payments = payments
        self.calendar = calendar
        self.config = config or DisputesConfig()

    def now(self) -> datetime:
        return self._clock.now()

    # -- opening --------------------------------------------------------------------------

    async def open(
        self,
        actor: Actor,
        *,
        payment_id: str,
        reason: str,
        amount: int | None = None,
        opened_by: Opener,
        partner_id: str | None = None,
        rail_dispute_id: str | None = None,
    ) -> DisputeDetail:
        """Open a dispute on a succeeded payout or collection, for ``amount`` (default:
        all that is left to dispute: the payment's amount less its refunds and what other
        disputes take). ``partner_id``: the merchant opening it (another merchant's payment
        is not found); None for operations and the rail. A collection's disputed amount is
        held out of the merchant's available balance at once (as much as it covers; the
        rest is the dispute's ``hold_shortfall``). From the rail, ``rail_dispute_id``
        makes it idempotent: the same id again answers the dispute already opened."""
        kind_of_reason = _reason(reason)
        if amount is not None and amount <= 0:
            raise InvalidInput("amount must be positive.", code="invalid_amount")
        now = self._clock.now()
        async with _unit_of_work(self._tx) as tx:
            if rail_dispute_id is not None:
                await tx.disputes.lock(f"dispute:rail:{rail_dispute_id}")
                known = await tx.disputes.by_rail_id(rail_dispute_id)
                if known is not None:
                    return await self._detail(tx, known)
            # Locks the payment's row: a refund of it waits for this dispute, and sees it.
            payment = await self._payments.lock_for_dispute(payment_id)
            if payment is None or (partner_id is not None and payment.partner_id != partner_id):
                raise NotFound(f"No payment '{payment_id[:40]}'.")
            kind = _kind(str(payment.type))
            if str(payment.status) != "succeeded":
                raise PaymentNotDisputable(
                    f"Only a succeeded payment can be disputed; this one is {payment.status}."
                )
            # Disputes of one payment open one at a time: two partial disputes at once
            # cannot both take what is left.
            await tx.disputes.lock(f"dispute:payment:{payment.id}")
            taken = sum(
                consumes(d.payment_type, d.status, d.amount)
                for d in await tx.disputes.on_payment(payment.id)
            )
            remaining = payment.amount.amount - payment.refunded_amount - taken
            if remaining <= 0:
                raise DisputeAmountExceedsRemaining(
                    "Nothing of this payment is left to dispute: its refunds and its other "
                    "disputes cover all of it."
                )
            wanted = remaining if amount is None else amount
            if wanted > remaining:
                raise DisputeAmountExceedsRemaining(
                    f"At most {remaining} {payment.amount.currency} minor units of this "
                    "payment are left to dispute."
                )
            respond_by, decide_by = deadlines(self.calendar, self.config.deadlines, now)
            dispute = Dispute(
                id=new_id("dispute"),
                partner_id=payment.partner_id,
                payment_id=payment.id,
                payment_type=kind,
                status=DisputeStatus.NEEDS_RESPONSE,
                reason=kind_of_reason,
                currency=payment.amount.currency,
                funds=Funds(wanted),
                opened_by=opened_by,
                opener_id=actor.id,
                respond_by=respond_by,
                decide_by=decide_by,
                version=1,
                created_at=now,
                updated_at=now,
                rail_dispute_id=rail_dispute_id,
            )
            funds, journals = await self._move(dispute, opening_steps(kind))
            dispute = replace(dispute, funds=funds)
            await tx.disputes.add(dispute)
            await self._record(tx, actor, dispute, None, "open", journals, None)
            await audit.record(
                tx,
                self._clock,
                actor,
                "dispute.opened",
                target_type="dispute",
                target_id=dispute.id,
                payload={
                    "payment_id": dispute.payment_id,
                    "payment_type": kind.value,
                    "reason": dispute.reason.value,
                    "amount": wanted,
                    "currency": dispute.currency,
                    "held": funds.held,
                    "opened_by": opened_by.value,
                    "rail_dispute_id": rail_dispute_id,
                    "journal_ids": journals,
                },
            )
            detail = await self._detail(tx, dispute)
            self._notify(tx, OPENED, detail)
        return detail

    # -- the merchant's answer --------------------------------------------------------------

    async def add_evidence(
        self,
        actor: Actor,
        dispute_id: str,
        content_type: str | None,
        data: bytes,
        *,
        partner_id: str | None,
    ) -> EvidenceMeta:
        """Keep an evidence file (PDF, PNG, JPEG or plain text, checked by its first bytes,
        at most ``evidence_max_bytes``), sealed at rest, with its SHA-256. A merchant
        (``partner_id``) adds evidence while the dispute awaits its response; an operator
        (``partner_id`` None) also while it is under review."""
        checked = evidence_rules.check(content_type, data, max_bytes=self.config.evidence_max_bytes)
        now = self._clock.now()
        evidence_id = new_id("dispute_evidence")
        encoded = base64.b64encode(data).decode("ascii")
        async with _unit_of_work(self._tx) as tx:
            dispute = await self._locked(tx, dispute_id, partner_id)
            allowed = {DisputeStatus.NEEDS_RESPONSE} if partner_id is not None else OPEN
            if dispute.status not in allowed:
                raise EvidenceNotAccepted(
                    f"The dispute is {dispute.status.value}: evidence is added while it "
                    "awaits a response"
                    + (" (operations may add it while under review)." if partner_id else ".")
                )
            if dispute.status is DisputeStatus.NEEDS_RESPONSE and is_overdue(
                dispute.respond_by, now
            ):
                raise ResponseDeadlinePassed(_DEADLINE_PASSED.format(dispute.respond_by))
            if await tx.disputes.evidence_count(dispute.id) >= self.config.max_evidence_files:
                raise EvidenceLimitReached(
                    f"A dispute holds at most {self.config.max_evidence_files} evidence files."
                )
            sealed = await self._protection.seal_within(
                tx, encoded, table="dispute_evidence", column="content", row_id=evidence_id
            )
            meta = EvidenceMeta(
                id=evidence_id,
                dispute_id=dispute.id,
                partner_id=dispute.partner_id,
                content_type=checked.content_type,
                size=checked.size,
                sha256=checked.sha256,
                uploaded_by_type=actor.type,
                uploaded_by_id=actor.id,
                request_id=(actor.request_id or "")[:REQUEST_ID_WIDTH] or None,
                created_at=now,
            )
            await tx.disputes.add_evidence(meta, sealed)
            after = replace(dispute, version=dispute.version + 1, updated_at=now)
            if not await tx.disputes.save(dispute, after):
                raise Contention("The dispute changed at the same moment; try again.")
            await audit.record(
                tx,
                self._clock,
                actor,
                "dispute.evidence_added",
                target_type="dispute",
                target_id=dispute.id,
                payload={
                    "evidence_id": evidence_id,
                    "content_type": checked.content_type,
                    "size": checked.size,
                    "sha256": checked.sha256,
                },
            )
            self._notify(tx, UPDATED, await self._detail(tx, after))
        return meta

    async def respond(
        self, actor: Actor, dispute_id: str, explanation: str, *, partner_id: str
    ) -> DisputeDetail:
        """The merchant's response: its explanation (1 to 5000 characters, sealed at rest)
        with the evidence added so far; the dispute goes ``under_review``."""
        return await self._respond(actor, dispute_id, explanation, partner_id, "merchant")

    async def respond_as_operator(
        self, actor: Actor, dispute_id: str, explanation: str
    ) -> DisputeDetail:
        """An operator submits the merchant's response for it (say, given by phone)."""
        return await self._respond(actor, dispute_id, explanation, None, "operator")

    async def _respond(
        self,
        actor: Actor,
        dispute_id: str,
        explanation: str,
        partner_id: str | None,
        by: str,
    ) -> DisputeDetail:
        text = _explanation(explanation)

        async def answer(tx: DisputesTx, before: Dispute, after: Dispute) -> Dispute:
            sealed = await self._protection.seal_within(
                tx, text, table="disputes", column="response_text", row_id=before.id
            )
            return replace(
                after, response_text=sealed, responded_at=after.updated_at, responded_by=by
            )

        def in_time(dispute: Dispute) -> None:
            if dispute.status is DisputeStatus.NEEDS_RESPONSE and is_overdue(
                dispute.respond_by, self._clock.now()
            ):
                raise ResponseDeadlinePassed(_DEADLINE_PASSED.format(dispute.respond_by))

        return await self._act(
            actor,
            dispute_id,
            Action.RESPOND,
            partner_id=partner_id,
            guard=in_time,
            amend=answer,
            audit_payload={"explanation_length": len(text)},
        )

    async def accept(
        self, actor: Actor, dispute_id: str, *, partner_id: str | None
    ) -> DisputeDetail:
        """The merchant accepts the dispute (before or after responding): a collection's
        held money goes to the payer, a payout's stays where it is. ``partner_id`` None:
        an operator accepts for the merchant."""
        return await self._act(actor, dispute_id, Action.ACCEPT, partner_id=partner_id)

    async def withdraw(
        self, actor: Actor, dispute_id: str, *, by: Opener, partner_id: str | None = None
    ) -> DisputeDetail:
        """Whoever opened the dispute (``by``: the merchant, operations or the rail) takes
        it back; a collection's held money returns to the merchant."""

        def opener_only(dispute: Dispute) -> None:
            if dispute.opened_by is not by:
                raise WithdrawalRefused(
                    f"This dispute was opened by the {dispute.opened_by.value}; only they "
                    "can withdraw it."
                )

        return await self._act(
            actor, dispute_id, Action.WITHDRAW, partner_id=partner_id, guard=opener_only
        )

    # -- deciding -----------------------------------------------------------------------------

    async def decide(self, actor: Actor, dispute_id: str, outcome: str, note: str) -> DisputeDetail:
        """Decide a dispute under review: ``won`` (for the merchant: a collection's held
        money comes back, a payout's amount is returned to it) or ``lost`` (a collection's
        held money goes to the payer). The note is kept with the decision."""
        action = {"won": Action.WIN, "lost": Action.LOSE}.get(outcome)
        if action is None:
            raise InvalidInput("outcome must be won or lost.", reason="unknown_outcome")
        async with self._tx.read() as tx:
            history = await tx.disputes.transitions([dispute_id])
        involved = {
            t.actor_id
            for t in history
            if t.actor_type == "operator" and t.action in ("open", "respond", "evidence")
        }
        if actor.type == "operator" and actor.id in involved:
            # Four eyes: a decision moves money (a won payout dispute credits the merchant),
            # so the operator who built the case for the merchant does not also judge it.
            raise DecisionNeedsAnotherOperator(
                "You opened this dispute or answered it for the merchant: another operator "
                "with disputes.write decides it."
            )
        return await self._act(actor, dispute_id, action, note=_note(note))

    async def decide_from_rail(
        self, actor: Actor, rail_dispute_id: str, outcome: str
    ) -> DisputeDetail:
        """The rail's decision on a dispute it raised: ``won``, ``lost`` or ``withdrawn``.
        The same decision again answers the dispute as it is (the rail retries)."""
        actions = {"won": Action.WIN, "lost": Action.LOSE, "withdrawn": Action.WITHDRAW}
        action = actions.get(outcome)
        if action is None:
            raise InvalidInput("outcome must be won, lost or withdrawn.", reason="unknown_outcome")
        async with self._tx.read() as tx:
            dispute = await tx.disputes.by_rail_id(rail_dispute_id)
        if dispute is None:
            raise NotFound(f"No dispute with the rail's id '{rail_dispute_id[:64]}'.")
        if dispute.status.value == outcome:
            return await self.get(dispute.id)
        if action is Action.WITHDRAW:
            return await self.withdraw(actor, dispute.id, by=Opener.RAIL)
        return await self._act(actor, dispute.id, action, note=f"decided by the rail: {outcome}")

    async def expire_overdue(
        self, actor: Actor = SYSTEM, *, limit: int = 200
    ) -> builtins.list[str]:
        """Close ``lost`` every dispute still awaiting its response after its respond-by
        date ("no response by deadline"). Safe to run anywhere, any number of times at
        once: a dispute another worker (or the merchant) moved meanwhile is skipped."""
        now = self._clock.now()
        async with self._tx.read() as tx:
            due = await tx.disputes.overdue(karachi_date(now), limit)

        def still_overdue(dispute: Dispute) -> None:
            if not is_overdue(dispute.respond_by, self._clock.now()):
                raise DisputeTransitionRefused("not overdue")

        expired: builtins.list[str] = []
        for dispute_id in due:
            try:
                await self._act(
                    actor, dispute_id, Action.EXPIRE, note=NO_RESPONSE, guard=still_overdue
                )
            except (DisputeTransitionRefused, Contention):
                continue  # answered, or expired by another worker, a moment ago
            expired.append(dispute_id)
        return expired

    # -- reading ------------------------------------------------------------------------------

    async def get(self, dispute_id: str, *, partner_id: str | None = None) -> DisputeDetail:
        """One dispute with its evidence and history; ``partner_id``: only if it is that
        merchant's (another's answers NotFound, as if it did not exist)."""
        async with self._tx.read() as tx:
            dispute = await tx.disputes.get(dispute_id)
            if dispute is None or (partner_id is not None and dispute.partner_id != partner_id):
                raise NotFound(f"No dispute '{dispute_id[:40]}'.")
            return await self._detail(tx, dispute)

    async def list(
        self,
        *,
        status: str | None = None,
        partner_id: str | None = None,
        payment_id: str | None = None,
        cursor: tuple[datetime, str] | None = None,
        limit: int = 20,
    ) -> DisputePage:
        """Disputes newest first, filtered by status, merchant and payment; ``cursor`` is
        the previous page's ``next_cursor``."""
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit is 1 to 1000.", reason="limit")
        async with self._tx.read() as tx:
            rows = await tx.disputes.page(
                partner_id=partner_id,
                status=status,
                payment_id=payment_id,
                limit=limit + 1,
                before=cursor,
            )
            has_more = len(rows) > limit
            items = await self._details(tx, rows[:limit])
        last = items[-1].dispute if items else None
        return DisputePage(
            items=items,
            has_more=has_more,
            next_cursor=(last.created_at, last.id) if has_more and last else None,
        )

    async def on_payment(self, payment_id: str) -> builtins.list[DisputeDetail]:
        """Every dispute of one payment, oldest first (the payment's timeline)."""
        async with self._tx.read() as tx:
            return await self._details(tx, await tx.disputes.on_payment(payment_id))

    async def by_rail_reference(self, rail_dispute_id: str) -> DisputeDetail | None:
        """The dispute the rail raised under its own id, if any."""
        async with self._tx.read() as tx:
            dispute = await tx.disputes.by_rail_id(rail_dispute_id[:64])
            return await self._detail(tx, dispute) if dispute is not None else None

    async def near_deadline(self, now: datetime | None = None) -> builtins.list[NearDeadline]:
        """Open disputes near or past a deadline, most pressing first: awaiting the
        merchant within ``warn_days_before_deadline`` business days of ``respond_by_date``
        (warning) or past it (critical, until the expiry job closes it); under review
        within that of ``decide_by_date`` (warning) or past it (critical)."""
        moment = now or self._clock.now()
        policy = self.config.deadlines
        horizon = warn_from(self.calendar, policy, moment)
        async with self._tx.read() as tx:
            rows = await tx.disputes.due_by(horizon, horizon, 1000)
        found = []
        for dispute in rows:
            pressing = urgency(
                self.calendar, policy, dispute.status, dispute.respond_by, dispute.decide_by, moment
            )
            if pressing is not None:
                found.append(NearDeadline(dispute, pressing))
        found.sort(key=lambda n: (n.urgency.severity.value != "critical", n.urgency.deadline))
        return found

    async def evidence_file(
        self,
        dispute_id: str,
        evidence_id: str,
        *,
        partner_id: str | None = None,
        actor: Actor | None = None,
    ) -> EvidenceFile:
        """An evidence file in clear. ``partner_id``: the merchant's own only. ``actor``
        (an operator): the download is audited."""
        async with self._tx.read() as tx:
            found = await tx.disputes.evidence_file(evidence_id)
        if (
            found is None
            or found[0].dispute_id != dispute_id
            or (partner_id is not None and found[0].partner_id != partner_id)
        ):
            raise NotFound(f"No evidence '{evidence_id[:40]}' on this dispute.")
        meta, sealed = found
        clear = await self._protection.unseal(
            sealed, table="dispute_evidence", column="content", row_id=meta.id
        )
        try:
            content = base64.b64decode(clear, validate=True)
        except binascii.Error as exc:  # pragma: no cover - only a corrupted row
            raise DomainError("The evidence file could not be read back.") from exc
        if actor is not None:
            async with self._tx.write() as tx:
                await audit.record(
                    tx,
                    self._clock,
                    actor,
                    "dispute.evidence_downloaded",
                    target_type="dispute",
                    target_id=meta.dispute_id,
                    payload={"evidence_id": meta.id, "sha256": meta.sha256},
                )
        return EvidenceFile(meta, content)

    # -- the steps every change takes -------------------------------------------------------

    async def _locked(self, tx: DisputesTx, dispute_id: str, partner_id: str | None) -> Dispute:
        dispute = await tx.disputes.get(dispute_id, for_update=True)
        if dispute is None or (partner_id is not None and dispute.partner_id != partner_id):
            raise NotFound(f"No dispute '{dispute_id[:40]}'.")
        return dispute

    async def _act(
        self,
        actor: Actor,
        dispute_id: str,
        action: Action,
        *,
        partner_id: str | None = None,
        note: str | None = None,
        guard: Callable[[Dispute], None] | None = None,
        amend: Callable[[DisputesTx, Dispute, Dispute], Awaitable[Dispute]] | None = None,
        audit_payload: dict[str, Any] | None = None,
    ) -> DisputeDetail:
        """Move one dispute on by ``action``, with its money, history, event and audit."""
        now = self._clock.now()
        async with _unit_of_work(self._tx) as tx:
            before = await self._locked(tx, dispute_id, partner_id)
            if guard is not None:
                guard(before)
            target = next_status(before.status, action)  # refused before any money moves
            funds, journals = await self._move(before, closing_steps(before.payment_type, target))
            after = before.to(action, at=now, funds=funds, note=note)
            if amend is not None:
                after = await amend(tx, before, after)
            if not await tx.disputes.save(before, after):
                raise Contention("The dispute changed at the same moment; try again.")
            await self._record(tx, actor, after, before.status, action.value, journals, note)
            await audit.record(
                tx,
                self._clock,
                actor,
                AUDIT_ACTIONS[action],
                target_type="dispute",
                target_id=after.id,
                payload={
                    "action": action.value,
                    "from": before.status.value,
                    "to": after.status.value,
                    "amount": after.amount,
                    "currency": after.currency,
                    "held": after.funds.held,
                    "released": after.funds.released,
                    "reversed": after.funds.reversed,
                    "returned": after.funds.returned,
                    "journal_ids": journals,
                    **(audit_payload or {}),
                },
            )
            detail = await self._detail(tx, after)
            self._notify(tx, CLOSED if after.is_closed else UPDATED, detail)
        return detail

    async def _move(
        self, dispute: Dispute, steps: Sequence[Step]
    ) -> tuple[Funds, builtins.list[str]]:
        """Post each step's journal through payments; the funds after them, the journals."""
        funds = dispute.funds
        journals: builtins.list[str] = []
        partner, currency = dispute.partner_id, dispute.currency
        for step in steps:
            asked = funds.asked(step)
            if asked <= 0:
                continue
            if step is Step.HOLD:
                moved, journal = await self._payments.hold_for_dispute(
                    partner, dispute.id, asked, currency
                )
            else:
                move = {
                    Step.RELEASE: self._payments.release_dispute_hold,
                    Step.REVERSE: self._payments.reverse_dispute_hold,
                    Step.RETURN: self._payments.return_disputed_payout,
                }[step]
                moved, journal = asked, await move(partner, dispute.id, asked, currency)
            funds = funds.after(step, moved)
            if journal is not None:
                journals.append(journal)
        return funds, journals

    async def _record(
        self,
        tx: DisputesTx,
        actor: Actor,
        dispute: Dispute,
        from_status: DisputeStatus | None,
        action: str,
        journals: Sequence[str],
        note: str | None,
    ) -> None:
        await tx.disputes.add_transition(
            Transition(
                dispute_id=dispute.id,
                seq=await tx.disputes.next_seq(dispute.id),
                from_status=from_status.value if from_status else None,
                to_status=dispute.status.value,
                action=action,
                actor_type=actor.type,
                actor_id=actor.id,
                request_id=(actor.request_id or "")[:REQUEST_ID_WIDTH] or None,
                note=note,
                journal_ids=tuple(journals),
                at=self._clock.now(),
            )
        )

    def _notify(self, tx: DisputesTx, event_type: str, detail: DisputeDetail) -> None:
        tx.publish(
            PartnerNotice(detail.dispute.partner_id, event_type, detail.dispute.id, detail.view())
        )

    async def _explanation(self, dispute: Dispute) -> str | None:
        if dispute.response_text is None:
            return None
        return await self._protection.unseal(
            dispute.response_text, table="disputes", column="response_text", row_id=dispute.id
        )

    async def _detail(self, tx: DisputesTx, dispute: Dispute) -> DisputeDetail:
        return (await self._details(tx, [dispute]))[0]

    async def _details(
        self, tx: DisputesTx, rows: Sequence[Dispute]
    ) -> builtins.list[DisputeDetail]:
        ids = [d.id for d in rows]
        evidence: dict[str, builtins.list[EvidenceMeta]] = {i: [] for i in ids}
        history: dict[str, builtins.list[Transition]] = {i: [] for i in ids}
        if ids:
            for meta in await tx.disputes.evidence(ids):
                evidence[meta.dispute_id].append(meta)
            for step in await tx.disputes.transitions(ids):
                history[step.dispute_id].append(step)
        return [
            DisputeDetail(
                dispute=d,
                evidence=tuple(evidence[d.id]),
                history=tuple(history[d.id]),
                explanation=await self._explanation(d),
            )
            for d in rows
        ]

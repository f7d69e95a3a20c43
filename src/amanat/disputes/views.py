"""A dispute as merchants see it (the API and the ``dispute.*`` events) and as operators
see it (the same, with its partner, its history and who did what)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from amanat.disputes.domain.disputes import Dispute, PaymentKind
from amanat.disputes.ports import EvidenceMeta, Transition
from amanat.kernel.clock import format_timestamp

# The audit actor types, as a merchant reads who did something.
WHO = {"client": "merchant", "operator": "operator", "rail": "rail", "system": "amanat"}


def evidence_view(meta: EvidenceMeta) -> dict[str, Any]:
    return {
        "id": meta.id,
        "object": "dispute_evidence",
        "dispute_id": meta.dispute_id,
        "content_type": meta.content_type,
        "size": meta.size,
        "sha256": meta.sha256,
        "uploaded_by": WHO.get(meta.uploaded_by_type, meta.uploaded_by_type),
        "created_at": format_timestamp(meta.created_at),
    }


def dispute_view(
    dispute: Dispute, evidence: Sequence[EvidenceMeta], explanation: str | None
) -> dict[str, Any]:
    """``explanation``: the response in clear (the stored one is sealed)."""
    funds = dispute.funds
    response = None
    if dispute.responded_at is not None:
        response = {
            "explanation": explanation,
            "submitted_by": dispute.responded_by,
            "submitted_at": format_timestamp(dispute.responded_at),
        }
    return {
        "id": dispute.id,
        "object": "dispute",
        "payment_id": dispute.payment_id,
        "payment_type": dispute.payment_type.value,
        "status": dispute.status.value,
        "reason": dispute.reason.value,
        "amount": funds.amount,
        "currency": dispute.currency,
        "held_amount": funds.held,
        "hold_shortfall": (
            funds.shortfall if dispute.payment_type is PaymentKind.COLLECTION else 0
        ),
        "released_amount": funds.released,
        "reversed_amount": funds.reversed,
        "returned_amount": funds.returned,
        "opened_by": dispute.opened_by.value,
        "respond_by_date": dispute.respond_by.isoformat(),
        "decide_by_date": dispute.decide_by.isoformat(),
        "response": response,
        "evidence": [evidence_view(e) for e in evidence],
        "close_note": dispute.close_note,
        "version": dispute.version,
        "created_at": format_timestamp(dispute.created_at),
        "updated_at": format_timestamp(dispute.updated_at),
        "closed_at": format_timestamp(dispute.closed_at) if dispute.closed_at else None,
    }


def transition_view(transition: Transition) -> dict[str, Any]:
    return {
        "seq": transition.seq,
        "from_status": transition.from_status,
        "to_status": transition.to_status,
        "action": transition.action,
        "actor_type": transition.actor_type,
        "actor_id": transition.actor_id,
        "request_id": transition.request_id,
        "note": transition.note,
        "journal_ids": list(transition.journal_ids),
        "at": format_timestamp(transition.at),
    }


def operator_view(
    dispute: Dispute,
    evidence: Sequence[EvidenceMeta],
    explanation: str | None,
    history: Sequence[Transition],
) -> dict[str, Any]:
    """Everything operations reads of a dispute: the merchant's view, its partner, the
    rail's id for it, who opened it and every step it took."""
    view = dispute_view(dispute, evidence, explanation)
    for item, meta in zip(view["evidence"], evidence, strict=True):
        item["uploaded_by_id"] = meta.uploaded_by_id
    return view | {
        "partner_id": dispute.partner_id,
        "rail_dispute_id": dispute.rail_dispute_id,
        "opener_id": dispute.opener_id,
        "history": [transition_view(t) for t in history],
    }

"""One transaction's timeline on one page, with its counterparty masked by default.

The page reads through the capabilities' queries: the merged timeline from
:class:`~amanat.platform.timeline.TimelineService`, the payment from payments' service,
the counterparty's masked identifiers from data protection. An operator whose roles
allow it reveals an identifier with a reason; the reveal is audited before anything is
decrypted and the page view that shows it is in the access log. The actions a stuck
payment needs (ask the rail now, send a webhook again) sit beside the entries they act on.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from amanat.console.routes.common import (
    P,
    Session,
    console_router,
    note_access,
    render,
    require,
    see_other,
    text_field,
    text_fields,
)
from amanat.identity.sessions import operator_actor
from amanat.kernel.errors import InvalidInput
from amanat.kernel.ids import is_id_of
from amanat.kernel.masking import mask_cnic, mask_iban, mask_phone
from amanat.openbanking.services.consents import ConsentService
from amanat.payments.domain.payments import Payment, PaymentStatus
from amanat.payments.recovery import PaymentRecovery
from amanat.payments.service import PaymentService
from amanat.platform.http.errors import ApiProblem
from amanat.platform.http.services import find_service
from amanat.platform.protection.service import (
    REVEALABLE_FIELDS,
    DataProtectionService,
    SubjectDetails,
)
from amanat.platform.timeline import TimelineService
from amanat.webhooks.service import WebhookService

router = console_router()

FIELD_LABELS = {"iban": "IBAN", "raast_id": "Phone (Raast ID)", "cnic": "CNIC"}
MAX_ID = 64


@dataclass(frozen=True, slots=True)
class Counterparty:
    subject_id: str
    name: str | None
    bank_code: str | None
    masked: dict[str, str]
    """Field → masked value, for the identifiers this person has."""
    revealed: dict[str, str]
    """Field → clear value, only in the answer to a reveal."""
    erased: bool


def _masked(details: SubjectDetails) -> dict[str, str]:
    shown: dict[str, str] = {}
    if details.iban:
        shown["iban"] = mask_iban(details.iban)
    elif details.iban_last4:
        shown["iban"] = f"…{details.iban_last4}"
    if details.raast_id:
        shown["raast_id"] = mask_phone(details.raast_id)
    if details.cnic:
        shown["cnic"] = mask_cnic(details.cnic)
    return shown


def _name(details: SubjectDetails) -> str | None:
    # A name is personal data too: initials are enough to tell two customers apart.
    if not details.name:
        return None
    return " ".join(f"{part[0]}." for part in details.name.split() if part)


async def _counterparty(
    request: Request, subject_id: str, revealed: SubjectDetails | None = None
) -> Counterparty:
    details = await find_service(request, DataProtectionService).reveal(subject_id, partner_id=None)
    clear: dict[str, str] = {}
    if revealed is not None:
        clear = {
            field: value
            for field in REVEALABLE_FIELDS
            if (value := getattr(revealed, field)) is not None
        }
    return Counterparty(
        subject_id=subject_id,
        name=_name(details),
        bank_code=details.bank_code,
        masked=_masked(details),
        revealed=clear,
        erased=details.erased,
    )


# What has a timeline here: transactions and what hangs off them. Other ids (an operator,
# a partner, a client) are refused: their audit history is the audit trail's, behind
# audit.read, and this page needs only payments.read.
TRANSACTION_KINDS = (
    "payment",
    "refund",
    "dispute",
    "consent",
    "funds_confirmation",
    "event",
    "recon_break",
)


def _checked_id(value: str) -> str:
    if not any(is_id_of(kind, value) for kind in TRANSACTION_KINDS):
        raise ApiProblem(
            "not_found",
            "That is not the id of a payment, refund, dispute, consent, event or break; "
            "use the search to find one.",
            status=404,
        )
    return value


async def _page(
    request: Request,
    subject_id: str,
    *,
    status: int = 200,
    notice: str | None = None,
    error: str | None = None,
    revealed: SubjectDetails | None = None,
) -> Response:
    timeline = await find_service(request, TimelineService).timeline(subject_id)
    payment: Payment | None = await find_service(request, PaymentService).current(subject_id)
    if payment is None and not timeline.found:
        raise ApiProblem("not_found", f"Nothing is known of '{subject_id[:40]}'.", status=404)
    counterparty = (
        await _counterparty(request, payment.counterparty.subject_id, revealed)
        if payment is not None
        else None
    )
    enquirable = (
        payment is not None
        and not payment.is_terminal
        and not (payment.status is PaymentStatus.PENDING and payment.submitted_at is None)
    )
    events = sorted(
        {
            e.subject_id
            for e in timeline.entries
            if e.source == "webhook" and e.subject_id.startswith("evt_")
        }
    )
    return render(
        request,
        "console/timeline.html",
        status=status,
        subject_id=subject_id,
        payment=payment,
        counterparty=counterparty,
        field_labels=FIELD_LABELS,
        entries=timeline.entries,
        enquirable=enquirable,
        events=events,
        is_consent=is_id_of("consent", subject_id),
        notice=notice,
        error=error,
    )


@router.get("/timeline/{subject_id}")
async def timeline(subject_id: str, request: Request, session: Session) -> Response:
    require(session, P.PAYMENTS_READ)
    return await _page(request, _checked_id(subject_id))


@router.post("/timeline/{subject_id}/reveal")
async def reveal(subject_id: str, request: Request, session: Session) -> Response:
    """Reveal some of the counterparty's identifiers: the audit record commits first."""
    require(session, P.PERSONAL_DATA_REVEAL)
    subject_id = _checked_id(subject_id)
    form = await request.form()
    fields = tuple(f for f in text_fields(form, "fields") if f in REVEALABLE_FIELDS)
    reason = text_field(form, "reason")[:600]
    payment = await find_service(request, PaymentService).current(subject_id)
    if payment is None:
        raise ApiProblem("not_found", "Only a payment's counterparty can be revealed here.")
    try:
        revealed = await find_service(request, DataProtectionService).reveal_for_operator(
            operator_actor(request, session),
            payment.counterparty.subject_id,
            fields=fields,
            reason=reason,
            context=subject_id,
        )
    except InvalidInput as exc:
        note_access(request, action="denied", detail="reveal refused: " + exc.message[:80])
        return await _page(request, subject_id, status=422, error=exc.message)
    note_access(
        request,
        action="reveal",
        subject=payment.counterparty.subject_id,
        detail=f"fields {','.join(sorted(fields))} of the counterparty of {subject_id}",
    )
    return await _page(
        request,
        subject_id,
        revealed=revealed,
        notice="Revealed. This is recorded in the audit trail and the access log.",
    )


@router.post("/payments/{payment_id}/enquire")
async def enquire(payment_id: str, request: Request, session: Session) -> Response:
    require(session, P.PAYMENTS_ENQUIRE)
    payment_id = _checked_id(payment_id)
    form = await request.form()
    await find_service(request, PaymentRecovery).enquire_now(
        operator_actor(request, session),
        payment_id,
        reason=text_field(form, "reason") or "asked from the console",
    )
    return await _page(
        request,
        payment_id,
        notice="A status enquiry is queued to run now; reload in a few seconds to see the answer.",
    )


@router.post("/events/{event_id}/redeliver")
async def redeliver(event_id: str, request: Request, session: Session) -> Response:
    require(session, P.WEBHOOKS_REDELIVER)
    event_id = _checked_id(event_id)
    form = await request.form()
    back = text_field(form, "back")
    deliveries = await find_service(request, WebhookService).redeliver_for_operator(
        operator_actor(request, session), event_id
    )
    if any(is_id_of(kind, back) for kind in TRANSACTION_KINDS):
        return await _page(
            request,
            back,
            notice=f"Event {event_id} queued again to {len(deliveries)} endpoint(s).",
        )
    return see_other(f"/console/timeline/{event_id}")


@router.post("/consents/{consent_id}/revoke")
async def revoke_consent(consent_id: str, request: Request, session: Session) -> Response:
    """Risk ends a consent: the TPP's tokens for it stop working at once."""
    require(session, P.CONSENTS_REVOKE)
    consent_id = _checked_id(consent_id)
    if not is_id_of("consent", consent_id):
        raise ApiProblem("not_found", f"No consent '{consent_id[:40]}'.", status=404)
    await find_service(request, ConsentService).revoke_by_operator(
        consent_id, operator_actor(request, session)
    )
    return await _page(request, consent_id, notice=f"Consent {consent_id} revoked.")

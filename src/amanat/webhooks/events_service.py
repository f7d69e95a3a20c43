"""Emitting and reading partner events.

:meth:`EventService.emit` runs inside the caller's transaction: the event row and one
delivery row per subscribed endpoint commit with the state change or not at all, so an
event can be neither lost nor invented. The object is sealed because it can carry a
payment's free-text description.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from amanat.kernel.clock import Clock
from amanat.kernel.errors import NotFound
from amanat.kernel.ids import new_id
from amanat.openbanking.domain.events import ConsentChanged
from amanat.payments.domain.events import BalanceToppedUp, PaymentChanged
from amanat.platform.db.ports import TransactionFactory
from amanat.platform.protection.service import DataProtectionService
from amanat.reconciliation.domain.events import PartnerNotice
from amanat.webhooks import views
from amanat.webhooks.domain.endpoints import Delivery, DeliveryStatus, WebhookEndpoint
from amanat.webhooks.domain.events import CATALOGUE, Event
from amanat.webhooks.ports import EventFilter, StoredEvent, WebhooksTx


def encode(document: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed: compact JSON, UTF-8.

    A lone surrogate (JSON like ``"\\udc00"`` parses to one, and metadata keeps it) has no
    UTF-8 form; it is written as its JSON escape instead, so the event is still valid
    JSON and a state change is never refused because of what a string holds."""
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8", "backslashreplace")


@dataclass(frozen=True, slots=True)
class EventPage:
    items: list[Event]
    has_more: bool


HELD = "held"
"""The trigger of a delivery queued while its endpoint was disabled."""


def new_delivery(event: StoredEvent, endpoint_id: str, trigger: str, now: datetime) -> Delivery:
    return Delivery(
        id=new_id("webhook_delivery"),
        event_id=event.id,
        endpoint_id=endpoint_id,
        partner_id=event.partner_id,
        event_type=event.type,
        trigger=trigger,
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        last_status_code=None,
        last_error=None,
        event_created_at=event.created_at,
        first_attempt_at=None,
        created_at=now,
        updated_at=now,
    )


class EventService:
    def __init__(
        self,
        transactions: TransactionFactory[WebhooksTx],
        clock: Clock,
        protection: DataProtectionService,
    ) -> None:
        self._tx = transactions
        self._clock = clock
        self._protection = protection

    # -- writing (inside the caller's transaction) --------------------------------------

    async def emit(
        self,
        tx: WebhooksTx,
        *,
        partner_id: str,
        type: str,
        object_id: str,
        version: int | None,
        data: dict[str, Any],
    ) -> StoredEvent:
        spec = CATALOGUE[type]  # an unknown type is a programming error
        now = self._clock.now()
        event_id = new_id("event")
        event = StoredEvent(
            id=event_id,
            partner_id=partner_id,
            type=type,
            object_type=spec.object,
            object_id=object_id,
            object_version=version,
            created_at=now,
            sealed_data=await self._protection.seal_within(
                tx, encode(data).decode(), table="events", column="data", row_id=event_id
            ),
        )
        await tx.events.add(event)
        # Disabled endpoints get their deliveries too, as "held": they wait, unclaimed,
        # until the endpoint is enabled again, then go out one at a time, oldest first (see
        # WebhookService.update_endpoint and the deliverer).
        endpoints = await tx.webhooks.subscribed(partner_id, type, include_disabled=True)
        await tx.webhooks.add_deliveries(
            [new_delivery(event, e.id, "event" if e.enabled else HELD, now) for e in endpoints]
        )
        return event

    async def on_payment_changed(self, event: PaymentChanged, tx: WebhooksTx) -> None:
        """The payments capability wrote a new version of a payment: tell its partner."""
        if event.event_type is None:
            return
        await self.emit(
            tx,
            partner_id=event.partner_id,
            type=event.event_type,
            object_id=event.payment_id,
            version=event.version,
            data=event.view,
        )

    async def on_consent_changed(self, event: ConsentChanged, tx: WebhooksTx) -> None:
        """Open banking authorised or ended a consent: tell the TPP that holds it."""
        await self.emit(
            tx,
            partner_id=event.partner_id,
            type=event.event_type,
            object_id=event.consent_id,
            version=event.version,
            data=event.view,
        )

    async def on_partner_notice(self, event: PartnerNotice, tx: WebhooksTx) -> None:
        """Settlement closed a cycle, or reconciliation opened a break on a payment."""
        await self.emit(
            tx,
            partner_id=event.partner_id,
            type=event.event_type,
            object_id=event.object_id,
            version=None,
            data=event.view,
        )

    async def on_balance_topped_up(self, event: BalanceToppedUp, tx: WebhooksTx) -> None:
        await self.emit(
            tx,
            partner_id=event.partner_id,
            type="balance.topped_up",
            object_id=event.top_up_id,
            version=None,
            data=event.balance,
        )

    async def endpoint_disabled(self, tx: WebhooksTx, endpoint: WebhookEndpoint) -> None:
        await self.emit(
            tx,
            partner_id=endpoint.partner_id,
            type="webhook_endpoint.disabled",
            object_id=endpoint.id,
            version=endpoint.version,
            data=views.endpoint_view(endpoint),
        )

    # -- reading ------------------------------------------------------------------------

    async def open(self, stored: StoredEvent) -> Event:
        clear = await self._protection.unseal(
            stored.sealed_data, table="events", column="data", row_id=stored.id
        )
        return Event(
            id=stored.id,
            partner_id=stored.partner_id,
            type=stored.type,
            object_type=stored.object_type,
            object_id=stored.object_id,
            object_version=stored.object_version,
            created_at=stored.created_at,
            data=json.loads(clear),
        )

    async def get(self, partner_id: str, event_id: str) -> Event:
        async with self._tx.read() as tx:
            stored = await tx.events.get(event_id)
        if stored is None or stored.partner_id != partner_id:
            raise NotFound(f"No event '{event_id[:40]}'.")
        return await self.open(stored)

    async def list(
        self,
        partner_id: str,
        *,
        limit: int,
        before: tuple[datetime, str] | None,
        where: EventFilter,
    ) -> EventPage:
        async with self._tx.read() as tx:
            page = await tx.events.newest_first(partner_id, limit=limit, before=before, where=where)
        return EventPage(items=[await self.open(s) for s in page.items], has_more=page.has_more)

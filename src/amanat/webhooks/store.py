"""The event log, webhook endpoints, the delivery queue and its attempt records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.kernel.pagination import Page
from amanat.platform.db.paging import newest_first
from amanat.webhooks.domain.endpoints import Attempt, Delivery, DeliveryStatus, WebhookEndpoint
from amanat.webhooks.ports import DeliveryFilter, EventFilter, StoredEvent
from amanat.webhooks.tables import events, webhook_attempts, webhook_deliveries, webhook_endpoints

# Every payment change and every delivery attempt runs these; built once (see the package
# docstring).
_INSERT_EVENTS = events.insert()
_INSERT_WEBHOOK_DELIVERIES = webhook_deliveries.insert()
_INSERT_WEBHOOK_ATTEMPTS = webhook_attempts.insert()
_EVENT_BY_ID = events.select().where(events.c.id == sa.bindparam("p_id"))
_ENDPOINT_BY_ID = webhook_endpoints.select().where(
    webhook_endpoints.c.id == sa.bindparam("p_id"), webhook_endpoints.c.deleted_at.is_(None)
)
_ENDPOINT_BY_ID_FOR_UPDATE = _ENDPOINT_BY_ID.with_for_update()  # SQLite omits FOR UPDATE
_ENABLED_ENDPOINTS = webhook_endpoints.select().where(
    webhook_endpoints.c.partner_id == sa.bindparam("p_partner"),
    webhook_endpoints.c.enabled.is_(True),
    webhook_endpoints.c.deleted_at.is_(None),
)
# Disabled endpoints too: events raised while one is disabled are held for it.
_LIVE_ENDPOINTS = webhook_endpoints.select().where(
    webhook_endpoints.c.partner_id == sa.bindparam("p_partner"),
    webhook_endpoints.c.deleted_at.is_(None),
)
_DELIVERY_BY_ID = webhook_deliveries.select().where(webhook_deliveries.c.id == sa.bindparam("p_id"))
# The SET clause is the parameters named after columns.
_SETTLE = webhook_deliveries.update().where(
    webhook_deliveries.c.id == sa.bindparam("p_id"),
    webhook_deliveries.c.locked_by == sa.bindparam("p_owner"),
)
_ANY_DUE = sa.select(
    sa.exists().where(
        webhook_deliveries.c.status == DeliveryStatus.PENDING.value,
        webhook_deliveries.c.next_attempt_at <= sa.bindparam("p_now"),
        sa.or_(
            webhook_deliveries.c.locked_until.is_(None),
            webhook_deliveries.c.locked_until < sa.bindparam("p_now"),
        ),
    )
)


def _newest_first(table: sa.Table, stmt: Any, before: tuple[datetime, str] | None) -> Any:
    return newest_first(stmt, table.c.created_at, table.c.id, before)


def _event(row: Any) -> StoredEvent:
    return StoredEvent(
        id=row.id,
        partner_id=row.partner_id,
        type=row.type,
        object_type=row.object_type,
        object_id=row.object_id,
        object_version=row.object_version,
        created_at=row.created_at,
        sealed_data=row.data,
    )


def _filtered(stmt: Any, where: EventFilter) -> Any:
    if where.types:
        stmt = stmt.where(events.c.type.in_(where.types))
    if where.object_id:
        stmt = stmt.where(events.c.object_id == where.object_id)
    if where.created_gte:
        stmt = stmt.where(events.c.created_at >= where.created_gte)
    if where.created_lt:
        stmt = stmt.where(events.c.created_at < where.created_lt)
    return stmt


_HELD_TOO_LONG = "held longer than the retention window while the endpoint was disabled"


class SqlEventRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, event: StoredEvent) -> None:
        await self._conn.execute(
            _INSERT_EVENTS,
            {
                "id": event.id,
                "partner_id": event.partner_id,
                "type": event.type,
                "object_type": event.object_type,
                "object_id": event.object_id,
                "object_version": event.object_version,
                "data": event.sealed_data,
                "created_at": event.created_at,
            },
        )

    async def get(self, event_id: str) -> StoredEvent | None:
        row = (await self._conn.execute(_EVENT_BY_ID, {"p_id": event_id})).first()
        return _event(row) if row else None

    async def get_many(self, event_ids: list[str]) -> list[StoredEvent]:
        if not event_ids:
            return []
        rows = (
            await self._conn.execute(_EVENTS_BY_ID[self._conn.dialect.name], {"p_ids": event_ids})
        ).all()
        return [_event(r) for r in rows]

    async def newest_first(
        self,
        partner_id: str,
        *,
        limit: int,
        before: tuple[datetime, str] | None,
        where: EventFilter,
    ) -> Page[StoredEvent]:
        stmt = _filtered(events.select().where(events.c.partner_id == partner_id), where)
        stmt = _newest_first(events, stmt, before).limit(limit + 1)
        rows = (await self._conn.execute(stmt)).all()
        return Page(items=[_event(r) for r in rows[:limit]], has_more=len(rows) > limit)

    async def oldest_first(
        self, partner_id: str, *, where: EventFilter, limit: int
    ) -> list[StoredEvent]:
        stmt = _filtered(events.select().where(events.c.partner_id == partner_id), where)
        stmt = stmt.order_by(events.c.created_at, events.c.id).limit(limit)
        return [_event(r) for r in (await self._conn.execute(stmt)).all()]


def _endpoint(row: Any) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row.id,
        partner_id=row.partner_id,
        url=row.url,
        description=row.description,
        enabled_events=tuple(row.enabled_events),
        enabled=bool(row.enabled),
        disabled_reason=row.disabled_reason,
        secret=row.secret,
        previous_secret=row.previous_secret,
        previous_secret_expires_at=row.previous_secret_expires_at,
        failing_since=row.failing_since,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _endpoint_values(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "enabled_events": list(endpoint.enabled_events),
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "secret": endpoint.secret,
        "previous_secret": endpoint.previous_secret,
        "previous_secret_expires_at": endpoint.previous_secret_expires_at,
        "failing_since": endpoint.failing_since,
        "version": endpoint.version,
        "updated_at": endpoint.updated_at,
    }


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        event_id=row.event_id,
        endpoint_id=row.endpoint_id,
        partner_id=row.partner_id,
        event_type=row.event_type,
        trigger=row.trigger,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        event_created_at=row.event_created_at,
        first_attempt_at=row.first_attempt_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


# How many ranks (and batches) past its own share a claim looks, for when other workers
# claiming at the same moment hold the first ones.
_LOOK_AHEAD = 4


def _one_of(column: Any, name: str, *, arrays: bool) -> Any:
    """``column IN (...)`` of a list parameter. On PostgreSQL ``= ANY(array)``: one
    statement text whatever the list's length, so asyncpg prepares it once (an expanded
    IN list is a new statement, and a new PREPARE, for every length)."""
    if arrays:
        return column == sa.any_(sa.bindparam(name, type_=postgresql.ARRAY(sa.String)))
    return column.in_(sa.bindparam(name, expanding=True))


def _ranked_in_one_pass(due: Any, *, arrays: bool) -> Any:
    """SQLite: every due delivery ranked within its endpoint by one window. It reads the
    whole queue, which one writer's queue stays small enough for."""
    d, e = webhook_deliveries, webhook_endpoints
    rank = (
        sa.func.row_number()
        .over(partition_by=d.c.endpoint_id, order_by=(d.c.next_attempt_at, d.c.id))
        .label("rank")
    )
    return (
        sa.select(d.c.id, d.c.next_attempt_at, rank)
        .join(e, e.c.id == d.c.endpoint_id)
        .where(
            due,
            e.c.enabled.is_(True),
            sa.not_(_one_of(d.c.endpoint_id, "p_exclude", arrays=arrays)),
        )
        .subquery("ranked")
    )


def _ranked_per_endpoint(now: Any, *, arrays: bool) -> Any:
    """PostgreSQL: the first ``p_look_ranks`` due deliveries of each endpoint that has
    pending ones, from the partial index of the queue, ranked within their endpoint.

    ``queued`` walks the distinct endpoints of the queue by skipping along the index
    (a recursive "loose index scan": one index probe per endpoint, not one row per
    delivery), and a LATERAL subquery reads each endpoint's oldest few. A claim then
    costs the same whether ten or a hundred thousand deliveries wait; ranking the whole
    queue in one window, as SQLite does, read and sorted all of it on every claim, so a
    worker that fell behind slowed down further."""
    e = webhook_endpoints
    first, after, queue = (webhook_deliveries.alias(n) for n in ("q_first", "q_next", "q_rows"))

    def pending(alias: Any) -> Any:
        # A literal, not a bound value: the partial index's predicate must be seen in it.
        return sa.text(f"{alias.name}.status = '{DeliveryStatus.PENDING.value}'")

    queued = (
        sa.select(sa.func.min(first.c.endpoint_id).label("endpoint_id"))
        .where(pending(first))
        .cte("queued", recursive=True)
    )
    queued = queued.union_all(
        sa.select(
            sa.select(sa.func.min(after.c.endpoint_id))
            .where(pending(after), after.c.endpoint_id > queued.c.endpoint_id)
            .scalar_subquery()
        ).where(queued.c.endpoint_id.is_not(None))
    )
    oldest = (
        sa.select(queue.c.id, queue.c.next_attempt_at)
        .where(
            queue.c.endpoint_id == queued.c.endpoint_id,
            pending(queue),
            queue.c.next_attempt_at <= now,
            sa.or_(queue.c.locked_until.is_(None), queue.c.locked_until < now),
        )
        .order_by(queue.c.next_attempt_at, queue.c.id)
        .limit(sa.bindparam("p_look_ranks"))
        .lateral("oldest")
    )
    rank = (
        sa.func.row_number()
        .over(partition_by=queued.c.endpoint_id, order_by=(oldest.c.next_attempt_at, oldest.c.id))
        .label("rank")
    )
    return (
        sa.select(oldest.c.id, oldest.c.next_attempt_at, rank)
        .select_from(queued.join(e, e.c.id == queued.c.endpoint_id).join(oldest, sa.true()))
        .where(
            e.c.enabled.is_(True),
            sa.not_(_one_of(queued.c.endpoint_id, "p_exclude", arrays=arrays)),
        )
        .subquery("ranked")
    )


def _claim_statement(*, arrays: bool) -> Any:
    """One statement claims a batch (see :meth:`SqlWebhookRepository.claim`).

    1. ``candidates``: due deliveries of enabled endpoints, ranked within their endpoint
       (oldest first; :func:`_ranked_per_endpoint` on PostgreSQL), the first ranks of every
       endpoint before the next of any, a few ranks and batches past this claim's share.
    2. ``locked``: of those, in that order, the first ``p_limit`` rows nobody else holds
       (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, re-checked as due once locked; SQLite has one
       writer, so nobody else is here).
    3. ``taken``: at most ``p_per_endpoint`` of them per endpoint.
    4. The lease is set on those and the rows are returned.
    """
    d = webhook_deliveries
    now = sa.bindparam("p_now", type_=d.c.next_attempt_at.type)
    due = sa.and_(
        d.c.status == DeliveryStatus.PENDING.value,
        d.c.next_attempt_at <= now,
        sa.or_(d.c.locked_until.is_(None), d.c.locked_until < now),
    )
    ranked = (
        _ranked_per_endpoint(now, arrays=arrays)
        if arrays
        else _ranked_in_one_pass(due, arrays=arrays)
    )
    candidates = (
        sa.select(ranked.c.id, ranked.c.rank)
        .where(ranked.c.rank <= sa.bindparam("p_look_ranks"))
        .order_by(ranked.c.rank, ranked.c.next_attempt_at, ranked.c.id)
        .limit(sa.bindparam("p_look_rows"))
        .cte("candidates")
    )
    locked = (
        sa.select(d.c.id, d.c.endpoint_id, d.c.next_attempt_at, candidates.c.rank)
        .join(candidates, candidates.c.id == d.c.id)
        .where(due)
        .order_by(candidates.c.rank, d.c.next_attempt_at, d.c.id)
        .limit(sa.bindparam("p_limit"))
        .with_for_update(of=d, skip_locked=True)  # SQLite omits FOR UPDATE
        .cte("locked")
    )
    share = (
        sa.func.row_number()
        .over(
            partition_by=locked.c.endpoint_id,
            order_by=(locked.c.rank, locked.c.next_attempt_at, locked.c.id),
        )
        .label("share")
    )
    fair = sa.select(locked.c.id, share).subquery("fair")
    taken = sa.select(fair.c.id).where(fair.c.share <= sa.bindparam("p_per_endpoint")).cte("taken")
    return (
        d.update()
        .where(d.c.id == taken.c.id)
        .values(
            locked_until=sa.bindparam("p_lease_until", type_=d.c.locked_until.type),
            locked_by=sa.bindparam("p_owner"),
        )
        .returning(*d.c)
    )


_CLAIM = {"postgresql": _claim_statement(arrays=True), "sqlite": _claim_statement(arrays=False)}

# PostgreSQL records a batch of attempts in two statements whose text never changes (so
# asyncpg prepares them once): the rows travel as one array per column.
_PG_INSERT_ATTEMPTS = sa.text(
    "INSERT INTO webhook_attempts (delivery_id, attempt, started_at, status_code, latency_ms,"
    " error_class, response_excerpt)"
    " SELECT * FROM unnest(CAST(:delivery_id AS varchar[]), CAST(:attempt AS integer[]),"
    " CAST(:started_at AS timestamptz[]), CAST(:status_code AS integer[]),"
    " CAST(:latency_ms AS integer[]), CAST(:error_class AS varchar[]),"
    " CAST(:response_excerpt AS varchar[]))"
)
_PG_SETTLE_MANY = sa.text(
    "UPDATE webhook_deliveries AS d SET status = v.status, attempts = v.attempts,"
    " next_attempt_at = v.next_attempt_at, last_status_code = v.last_status_code,"
    " last_error = v.last_error, first_attempt_at = v.first_attempt_at,"
    " updated_at = v.updated_at, locked_until = NULL, locked_by = NULL"
    " FROM unnest(CAST(:id AS varchar[]), CAST(:status AS varchar[]),"
    " CAST(:attempts AS integer[]), CAST(:next_attempt_at AS timestamptz[]),"
    " CAST(:last_status_code AS integer[]), CAST(:last_error AS varchar[]),"
    " CAST(:first_attempt_at AS timestamptz[]), CAST(:updated_at AS timestamptz[]))"
    " AS v(id, status, attempts, next_attempt_at, last_status_code, last_error,"
    " first_attempt_at, updated_at)"
    " WHERE d.id = v.id AND d.locked_by = :owner"
    " RETURNING d.id"
)
_HELD_BY = sa.select(webhook_deliveries.c.id).where(
    webhook_deliveries.c.id.in_(sa.bindparam("p_ids", expanding=True)),
    webhook_deliveries.c.locked_by == sa.bindparam("p_owner"),
)
_RELEASE_MANY = {
    dialect: webhook_deliveries.update()
    .where(
        _one_of(webhook_deliveries.c.id, "p_ids", arrays=dialect == "postgresql"),
        webhook_deliveries.c.locked_by == sa.bindparam("p_owner"),
    )
    .values(locked_until=None, locked_by=None)
    for dialect in ("postgresql", "sqlite")
}
_ENDPOINTS_BY_ID = {
    dialect: webhook_endpoints.select().where(
        _one_of(webhook_endpoints.c.id, "p_ids", arrays=dialect == "postgresql"),
        webhook_endpoints.c.deleted_at.is_(None),
    )
    for dialect in ("postgresql", "sqlite")
}
_EVENTS_BY_ID = {
    dialect: events.select().where(_one_of(events.c.id, "p_ids", arrays=dialect == "postgresql"))
    for dialect in ("postgresql", "sqlite")
}


def _attempt_values(attempt: Attempt) -> dict[str, Any]:
    return {
        "delivery_id": attempt.delivery_id,
        "attempt": attempt.attempt,
        "started_at": attempt.started_at,
        "status_code": attempt.status_code,
        "latency_ms": attempt.latency_ms,
        "error_class": attempt.error_class,
        "response_excerpt": attempt.response_excerpt,
    }


def _settled_values(delivery: Delivery) -> dict[str, Any]:
    return {
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "first_attempt_at": delivery.first_attempt_at,
        "updated_at": delivery.updated_at,
    }


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {name: [row[name] for row in rows] for name in rows[0]}


class SqlWebhookRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    # -- endpoints ----------------------------------------------------------------------

    async def add_endpoint(self, endpoint: WebhookEndpoint) -> None:
        await self._conn.execute(
            webhook_endpoints.insert().values(
                id=endpoint.id,
                partner_id=endpoint.partner_id,
                created_at=endpoint.created_at,
                deleted_at=None,
                **_endpoint_values(endpoint),
            )
        )

    async def get_endpoint(
        self, endpoint_id: str, *, for_update: bool = False
    ) -> WebhookEndpoint | None:
        stmt = _ENDPOINT_BY_ID_FOR_UPDATE if for_update else _ENDPOINT_BY_ID
        row = (await self._conn.execute(stmt, {"p_id": endpoint_id})).first()
        return _endpoint(row) if row else None

    async def list_endpoints(
        self, partner_id: str, *, limit: int, before: tuple[datetime, str] | None
    ) -> Page[WebhookEndpoint]:
        stmt = webhook_endpoints.select().where(
            webhook_endpoints.c.partner_id == partner_id,
            webhook_endpoints.c.deleted_at.is_(None),
        )
        stmt = _newest_first(webhook_endpoints, stmt, before).limit(limit + 1)
        rows = (await self._conn.execute(stmt)).all()
        return Page(items=[_endpoint(r) for r in rows[:limit]], has_more=len(rows) > limit)

    async def subscribed(
        self, partner_id: str, event_type: str, *, include_disabled: bool = False
    ) -> list[WebhookEndpoint]:
        stmt = _LIVE_ENDPOINTS if include_disabled else _ENABLED_ENDPOINTS
        rows = (await self._conn.execute(stmt, {"p_partner": partner_id})).all()
        found = [_endpoint(r) for r in rows]
        return [endpoint for endpoint in found if endpoint.subscribes_to(event_type)]

    async def save_endpoint(self, endpoint: WebhookEndpoint) -> None:
        await self._conn.execute(
            webhook_endpoints.update()
            .where(webhook_endpoints.c.id == endpoint.id)
            .values(**_endpoint_values(endpoint))
        )

    async def delete_endpoint(self, endpoint_id: str, at: datetime) -> None:
        await self._conn.execute(
            webhook_endpoints.update()
            .where(webhook_endpoints.c.id == endpoint_id)
            .values(deleted_at=at, updated_at=at, enabled=False)
        )
        # Nothing more goes to a deleted endpoint. Claims are dropped too, so an attempt in
        # flight finds its lease gone and cannot put its delivery back in the queue.
        await self._fail_pending(endpoint_id, "endpoint deleted", at)

    async def drop_held(self, endpoint_id: str, older_than: datetime, at: datetime) -> int:
        """Fail the endpoint's pending deliveries queued before ``older_than`` (held too
        long while it was disabled); how many were dropped. The delivery's own creation
        time counts, not the event's: a replay of old events queued yesterday is fresh."""
        return await self._fail_pending(
            endpoint_id,
            _HELD_TOO_LONG,
            at,
            webhook_deliveries.c.created_at < older_than,
        )

    async def drop_held_of_disabled(self, older_than: datetime, at: datetime) -> int:
        """:meth:`drop_held` for every endpoint that is disabled now, so deliveries held
        for an endpoint nobody re-enables do not pile up for ever; how many."""
        disabled = sa.select(webhook_endpoints.c.id).where(webhook_endpoints.c.enabled.is_(False))
        return await self._fail_pending_where(
            webhook_deliveries.c.endpoint_id.in_(disabled),
            _HELD_TOO_LONG,
            at,
            webhook_deliveries.c.created_at < older_than,
        )

    async def _fail_pending(
        self, endpoint_id: str, reason: str, at: datetime, *also: sa.ColumnElement[bool]
    ) -> int:
        """Fail the endpoint's pending deliveries (those matching ``also`` too) with
        ``reason``, dropping their claims; how many."""
        return await self._fail_pending_where(
            webhook_deliveries.c.endpoint_id == endpoint_id, reason, at, *also
        )

    async def _fail_pending_where(
        self,
        which: sa.ColumnElement[bool],
        reason: str,
        at: datetime,
        *also: sa.ColumnElement[bool],
    ) -> int:
        result = await self._conn.execute(
            webhook_deliveries.update()
            .where(which, webhook_deliveries.c.status == DeliveryStatus.PENDING.value, *also)
            .values(
                status=DeliveryStatus.FAILED.value,
                next_attempt_at=None,
                last_error=reason,
                updated_at=at,
                locked_until=None,
                locked_by=None,
            )
        )
        return int(result.rowcount or 0)

    # -- the delivery queue -------------------------------------------------------------

    async def add_deliveries(self, deliveries: list[Delivery]) -> None:
        if not deliveries:
            return
        await self._conn.execute(
            _INSERT_WEBHOOK_DELIVERIES,
            [
                {
                    "id": d.id,
                    "event_id": d.event_id,
                    "endpoint_id": d.endpoint_id,
                    "partner_id": d.partner_id,
                    "event_type": d.event_type,
                    "trigger": d.trigger,
                    "status": d.status.value,
                    "attempts": d.attempts,
                    "next_attempt_at": d.next_attempt_at,
                    "locked_until": None,
                    "locked_by": None,
                    "last_status_code": None,
                    "last_error": None,
                    "event_created_at": d.event_created_at,
                    "first_attempt_at": None,
                    "created_at": d.created_at,
                    "updated_at": d.updated_at,
                }
                for d in deliveries
            ],
        )

    async def claim(
        self,
        owner: str,
        *,
        now: datetime,
        lease_until: datetime,
        limit: int,
        per_endpoint: int,
        exclude_endpoints: set[str],
    ) -> list[Delivery]:
        """Claim due deliveries, at most ``per_endpoint`` of any one endpoint, taking the
        first of every endpoint before the second of any (fair across endpoints), in one
        statement; oldest first within an endpoint.

        Workers claiming at the same moment rank the same rows; each looks past the rows
        another has locked (SKIP LOCKED) into a few more ranks, so they take different
        work instead of all but one coming away empty."""
        rows = (
            await self._conn.execute(
                _CLAIM[self._conn.dialect.name],
                {
                    "p_now": now,
                    "p_lease_until": lease_until,
                    "p_owner": owner,
                    "p_limit": limit,
                    "p_per_endpoint": per_endpoint,
                    "p_look_ranks": per_endpoint * _LOOK_AHEAD,
                    "p_look_rows": limit * _LOOK_AHEAD,
                    "p_exclude": sorted(exclude_endpoints),
                },
            )
        ).all()
        claimed = [_delivery(r) for r in rows]
        claimed.sort(key=lambda d: (d.next_attempt_at or d.created_at, d.id))
        return claimed

    async def settle(self, delivery: Delivery, attempt: Attempt, owner: str) -> bool:
        """Record an attempt and the delivery's new state; False if another worker took the
        delivery over meanwhile (its lease ran out), in which case only the attempt is kept."""
        await self._conn.execute(
            _INSERT_WEBHOOK_ATTEMPTS,
            {
                "delivery_id": attempt.delivery_id,
                "attempt": attempt.attempt,
                "started_at": attempt.started_at,
                "status_code": attempt.status_code,
                "latency_ms": attempt.latency_ms,
                "error_class": attempt.error_class,
                "response_excerpt": attempt.response_excerpt,
            },
        )
        result = await self._conn.execute(
            _SETTLE,
            {
                "p_id": delivery.id,
                "p_owner": owner,
                "status": delivery.status.value,
                "attempts": delivery.attempts,
                "next_attempt_at": delivery.next_attempt_at,
                "last_status_code": delivery.last_status_code,
                "last_error": delivery.last_error,
                "first_attempt_at": delivery.first_attempt_at,
                "updated_at": delivery.updated_at,
                "locked_until": None,
                "locked_by": None,
            },
        )
        return bool(result.rowcount)

    async def settle_many(self, settled: list[tuple[Delivery, Attempt]], owner: str) -> set[str]:
        """:meth:`settle` for a batch: every attempt is inserted, and each delivery still
        held by ``owner`` takes its new state; returns the ids of those."""
        if not settled:
            return set()
        attempts = [_attempt_values(attempt) for _, attempt in settled]
        states = [{"id": d.id, **_settled_values(d)} for d, _ in settled]
        if self._conn.dialect.name == "postgresql":
            await self._conn.execute(_PG_INSERT_ATTEMPTS, _columns(attempts))
            kept = await self._conn.execute(_PG_SETTLE_MANY, {**_columns(states), "owner": owner})
            return {row[0] for row in kept.all()}
        # SQLite: one writer (BEGIN IMMEDIATE), so what is held now is held at the update.
        held = await self._conn.execute(
            _HELD_BY, {"p_ids": [state["id"] for state in states], "p_owner": owner}
        )
        kept_ids = {row[0] for row in held.all()}
        await self._conn.execute(_INSERT_WEBHOOK_ATTEMPTS, attempts)
        mine = [s for s in states if s["id"] in kept_ids]
        if mine:
            await self._conn.execute(
                _SETTLE,
                [
                    {
                        "p_id": s.pop("id"),
                        "p_owner": owner,
                        **s,
                        "locked_until": None,
                        "locked_by": None,
                    }
                    for s in mine
                ],
            )
        return kept_ids

    async def release_many(self, delivery_ids: list[str], owner: str) -> None:
        if delivery_ids:
            await self._conn.execute(
                _RELEASE_MANY[self._conn.dialect.name], {"p_ids": delivery_ids, "p_owner": owner}
            )

    async def endpoints(self, endpoint_ids: list[str]) -> dict[str, WebhookEndpoint]:
        """The live endpoints among ``endpoint_ids`` (deleted ones are absent)."""
        if not endpoint_ids:
            return {}
        rows = (
            await self._conn.execute(
                _ENDPOINTS_BY_ID[self._conn.dialect.name], {"p_ids": endpoint_ids}
            )
        ).all()
        return {row.id: _endpoint(row) for row in rows}

    async def release(self, delivery_id: str, owner: str) -> None:
        await self._conn.execute(
            _SETTLE,
            {"p_id": delivery_id, "p_owner": owner, "locked_until": None, "locked_by": None},
        )

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        row = (await self._conn.execute(_DELIVERY_BY_ID, {"p_id": delivery_id})).first()
        return _delivery(row) if row else None

    async def list_deliveries(
        self,
        endpoint_id: str,
        *,
        limit: int,
        before: tuple[datetime, str] | None,
        where: DeliveryFilter,
    ) -> Page[Delivery]:
        d = webhook_deliveries
        stmt = d.select().where(d.c.endpoint_id == endpoint_id)
        if where.status:
            stmt = stmt.where(d.c.status == where.status)
        if where.event_type:
            stmt = stmt.where(d.c.event_type == where.event_type)
        if where.created_gte:
            stmt = stmt.where(d.c.created_at >= where.created_gte)
        if where.created_lt:
            stmt = stmt.where(d.c.created_at < where.created_lt)
        stmt = _newest_first(d, stmt, before).limit(limit + 1)
        rows = (await self._conn.execute(stmt)).all()
        return Page(items=[_delivery(r) for r in rows[:limit]], has_more=len(rows) > limit)

    async def attempts(self, delivery_ids: list[str]) -> dict[str, list[Attempt]]:
        found: dict[str, list[Attempt]] = {i: [] for i in delivery_ids}
        if not delivery_ids:
            return found
        a = webhook_attempts
        stmt = a.select().where(a.c.delivery_id.in_(delivery_ids)).order_by(a.c.id)
        for r in (await self._conn.execute(stmt)).all():
            found[r.delivery_id].append(
                Attempt(
                    delivery_id=r.delivery_id,
                    attempt=r.attempt,
                    started_at=r.started_at,
                    status_code=r.status_code,
                    latency_ms=r.latency_ms,
                    error_class=r.error_class,
                    response_excerpt=r.response_excerpt,
                )
            )
        return found

    async def any_due(self, now: datetime) -> bool:
        return bool((await self._conn.execute(_ANY_DUE, {"p_now": now})).scalar())

    async def pending_count(self) -> int:
        stmt = (
            sa.select(sa.func.count())
            .select_from(webhook_deliveries)
            .where(webhook_deliveries.c.status == DeliveryStatus.PENDING.value)
        )
        return int((await self._conn.execute(stmt)).scalar_one())


class WebhookRows:
    """Retention class ``webhook_deliveries``: finished deliveries (with their attempts),
    then events no delivery refers to any more; ids are "webhook_deliveries:<id>" and
    "events:<id>"."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def due(self, cutoff: datetime, fetch: int) -> list[str]:
        d = webhook_deliveries
        done = (
            await self._conn.execute(
                sa.select(d.c.id)
                .where(d.c.created_at < cutoff, d.c.status != "pending")
                .order_by(d.c.created_at)
                .limit(fetch)
            )
        ).all()
        unreferenced = (
            await self._conn.execute(
                sa.select(events.c.id)
                .where(
                    events.c.created_at < cutoff,
                    ~sa.exists().where(d.c.event_id == events.c.id),
                )
                .order_by(events.c.created_at)
                .limit(fetch)
            )
        ).all()
        return [f"webhook_deliveries:{r[0]}" for r in done] + [
            f"events:{r[0]}" for r in unreferenced
        ]

    async def delete(self, ids: list[str]) -> int:
        deliveries = [i.partition(":")[2] for i in ids if i.startswith("webhook_deliveries:")]
        event_ids = [i.partition(":")[2] for i in ids if i.startswith("events:")]
        deleted = 0
        if deliveries:
            await self._conn.execute(
                webhook_attempts.delete().where(webhook_attempts.c.delivery_id.in_(deliveries))
            )
            result = await self._conn.execute(
                webhook_deliveries.delete().where(webhook_deliveries.c.id.in_(deliveries))
            )
            deleted += int(result.rowcount or 0)
        if event_ids:
            result = await self._conn.execute(
                events.delete().where(
                    events.c.id.in_(event_ids),
                    ~sa.exists().where(webhook_deliveries.c.event_id == events.c.id),
                )
            )
            deleted += int(result.rowcount or 0)
        return deleted

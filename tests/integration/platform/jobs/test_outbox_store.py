"""The outbox's SQL store, on both databases: a job rescheduled after its outcome was lost
goes back to pending only if its finish did not commit."""

from __future__ import annotations

from datetime import timedelta

from amanat.bootstrap import Container
from amanat.platform.jobs.outbox_store import SqlOutboxRepository
from amanat.platform.jobs.tables import outbox


async def _statuses(container: Container) -> dict[str, str]:
    async with container.db.read() as conn:
        rows = (await conn.execute(outbox.select().order_by(outbox.c.id))).all()
    return {row.subject_id: row.status for row in rows}


async def test_a_retry_reschedules_a_claimed_job_but_never_reopens_a_finished_one(
    container: Container,
) -> None:
    now = container.clock.now()
    async with container.db.write() as conn:
        jobs = SqlOutboxRepository(conn)
        await jobs.enqueue("test.kind", "finished", {}, now)
        await jobs.enqueue("test.kind", "cut_off", {}, now)
        claimed = await jobs.claim("w1", now, now + timedelta(minutes=1), limit=10)
    by_subject = {job.subject_id: job.id for job in claimed}
    async with container.db.write() as conn:
        await SqlOutboxRepository(conn).finish(by_subject["finished"], "w1", now)
    later = now + timedelta(seconds=5)
    async with container.db.write() as conn:
        jobs = SqlOutboxRepository(conn)
        for subject in ("finished", "cut_off"):  # the runtime's answer to a lost outcome
            await jobs.retry(by_subject[subject], "w1", later, "contended", now)
    assert await _statuses(container) == {"finished": "done", "cut_off": "pending"}

"""The wipe between tests (tests/conftest.py): it empties only the tables that hold rows,
so this checks that it misses none, puts the audit head back to genesis, and leaves the
append-only guard of the audit tables in place."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from tests.conftest import wipe
from tests.support.oauth import make_client

from amanat.bootstrap import Container
from amanat.platform.audit.domain import GENESIS_HASH, Actor
from amanat.platform.audit.tables import audit_head
from amanat.platform.db.metadata import metadata

SEALER = Actor(type="cli", id="tester")


async def counts(container: Container) -> dict[str, int]:
    async with container.db.read() as conn:
        return {
            table.name: int(
                (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()
            )
            for table in metadata.sorted_tables
        }


async def test_every_table_is_emptied_and_the_audit_guard_stays(container: Container) -> None:
    await make_client(container)  # partners, clients, a signing key and their audit records
    assert await container.audit_integrity.seal(SEALER) is not None
    before = await counts(container)
    assert before["audit_log"] > 0 and before["audit_seals"] > 0 and before["partners"] > 0

    await wipe(container)

    after = await counts(container)
    assert {name for name, n in after.items() if n} == {"audit_head"}
    async with container.db.read() as conn:
        head = (await conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash))).one()
    assert tuple(head) == (0, GENESIS_HASH)

    await make_client(container)  # the log takes appends again, from genesis
    assert await container.audit_integrity.seal(SEALER) is not None
    for statement in ("DELETE FROM audit_log", "DELETE FROM audit_seals"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            async with container.db.write() as conn:
                await conn.execute(sa.text(statement))


async def test_a_wipe_of_an_empty_database_changes_nothing(container: Container) -> None:
    await wipe(container)
    await wipe(container)
    assert {name for name, n in (await counts(container)).items() if n} == {"audit_head"}

"""Legal holds, and the dispatch of each retention data class to the rows that carry it.

Each capability registers the data classes of its own tables
(``registry.add_retention_class``); this store keeps the holds and asks the class's rows
what is due and how to remove it. Holds name records by
:func:`~amanat.platform.retention.service.hold_key` of their id here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.platform.retention.ports import RetainedRows
from amanat.platform.retention.service import hold_key
from amanat.platform.retention.tables import legal_holds

RetentionClasses = Mapping[str, Callable[[AsyncConnection], object]]


class SqlRetentionRepository:
    def __init__(self, conn: AsyncConnection, classes: RetentionClasses) -> None:
        self._conn = conn
        self._classes = classes

    def supports(self, data_class: str) -> bool:
        return data_class in self._classes

    def _rows(self, data_class: str) -> RetainedRows:
        rows: RetainedRows = self._classes[data_class](self._conn)  # type: ignore[assignment]
        return rows

    async def due(
        self, data_class: str, cutoff: datetime, limit: int, exclude: set[str]
    ) -> list[str]:
        """Up to ``limit`` ids that are due, none of them held.

        ``exclude`` holds hold keys (see :func:`hold_key`); held rows are filtered after the
        query, so each query fetches enough rows that ``limit`` unheld ones remain.
        """
        ids = await self._rows(data_class).due(cutoff, limit + len(exclude))
        # A long id is held under its digest (older SQLite holds may name it in full).
        return [i for i in ids if i not in exclude and hold_key(i) not in exclude][:limit]

    async def delete(self, data_class: str, ids: list[str]) -> int:
        if not ids:
            return 0
        return await self._rows(data_class).delete(ids)

    async def held_ids(self, data_class: str) -> set[str]:
        rows = (
            await self._conn.execute(
                sa.select(legal_holds.c.target_id).where(
                    legal_holds.c.data_class == data_class, legal_holds.c.released_at.is_(None)
                )
            )
        ).all()
        return {str(r[0]) for r in rows}

    async def add_hold(
        self,
        hold_id: str,
        data_class: str,
        target_id: str,
        reason: str,
        created_by: str,
        at: datetime,
    ) -> None:
        await self._conn.execute(
            legal_holds.insert(),
            {
                "id": hold_id,
                "data_class": data_class,
                "target_id": target_id,
                "reason": reason[:500],
                "created_by": created_by[:64],
                "created_at": at,
                "released_at": None,
            },
        )

    async def release_hold(self, data_class: str, target_id: str, at: datetime) -> int:
        result = await self._conn.execute(
            legal_holds.update()
            .where(
                legal_holds.c.data_class == data_class,
                legal_holds.c.target_id == target_id,
                legal_holds.c.released_at.is_(None),
            )
            .values(released_at=at)
        )
        return int(result.rowcount or 0)

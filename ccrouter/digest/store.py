"""The last run of every scheduled report (`report_runs`), claimed by one conditional UPDATE.

`claim(name, due, ...)` moves the row's `due_at` to `due` only where it is older: of several
services on one database (instances of a cluster, a restarted daemon) exactly one gets
rowcount 1 for a given run and sends it; the others, and the same service after a restart,
see the run taken. A schedule seen for the first time starts at its latest past run (`first`):
it sends from its next run on, not a catch-up of one it never had.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.db.dialect import insert_for
from ccrouter.db.tables import report_runs


@dataclass(frozen=True, slots=True)
class Run:
    name: str
    due_at: float
    claimed_by: str | None
    claimed_at: float | None
    sent_at: float | None
    error: str | None


class ReportRuns:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def claim(self, name: str, due: float, *, first: float, by: str, now: float) -> bool:
        """Take the run of `name` scheduled at `due`; whether this caller won it."""
        r = report_runs.c
        async with self._engine.begin() as conn:
            ins = insert_for(conn, report_runs).values(name=name, due_at=first)
            await conn.execute(ins.on_conflict_do_nothing(index_elements=["name"]))
        async with self._engine.begin() as conn:
            done = await conn.execute(
                sa.update(report_runs).where(r.name == name, r.due_at < due)
                .values(due_at=due, claimed_by=by, claimed_at=now, sent_at=None, error=None)
            )  # fmt: skip
        return int(done.rowcount) == 1

    async def finished(self, name: str, due: float, *, sent_at: float | None,
                       error: str | None = None) -> None:  # fmt: skip
        """Record how the claimed run at `due` ended: sent, or the error it failed with."""
        r = report_runs.c
        async with self._engine.begin() as conn:
            await conn.execute(sa.update(report_runs).where(r.name == name, r.due_at == due)
                               .values(sent_at=sent_at, error=error))  # fmt: skip

    async def runs(self) -> dict[str, Run]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(report_runs))).all()
        return {row.name: _run(row) for row in rows}


def _run(row: Any) -> Run:
    return Run(row.name, float(row.due_at), row.claimed_by, row.claimed_at, row.sent_at,
               row.error)  # fmt: skip

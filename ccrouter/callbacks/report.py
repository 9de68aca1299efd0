"""The callbacks' figures for the demo: requests made per queue (a column of the per-queue
table) and requests pending / attempts made / requests cancelled (a group of the live status).
The wiring hands them to the demo (`ccrouter.wiring.demo_figures`)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.callbacks.tables import callback_attempts, callback_requests
from ccrouter.config import Settings


class CallbackFigures:
    column = "callbacks"
    """Callback requests made for the queue's target during the run."""
    label = "callbacks"

    async def per_queue(self, engine: AsyncEngine, settings: Settings, since: float
                        ) -> dict[str, int]:  # fmt: skip
        r = callback_requests.c
        async with engine.connect() as conn:
            rows = (await conn.execute(
                sa.select(r.target, sa.func.count())
                .where(r.created_at >= since, r.kind == "callback").group_by(r.target)
            )).all()  # fmt: skip
        queue_of = {t.name: t.queue_name for t in settings.targets}
        out: dict[str, int] = {}
        for target, n in rows:
            q = queue_of.get(str(target), str(target))
            out[q] = out.get(q, 0) + int(n)
        return out

    async def status(self, engine: AsyncEngine, since: float) -> dict[str, int]:
        """pending (or dialling), made (attempts dialled: one Originate each), cancelled."""
        r, a = callback_requests.c, callback_attempts.c
        async with engine.connect() as conn:
            states: dict[str, int] = dict((await conn.execute(
                sa.select(r.state, sa.func.count()).where(r.created_at >= since)
                .group_by(r.state)
            )).tuples().all())  # fmt: skip
            made = (await conn.execute(
                sa.select(sa.func.count()).where(a.started_at >= since))).scalar_one()  # fmt: skip
        return {"pending": int(states.get("pending", 0) + states.get("dialing", 0)),
                "made": int(made), "cancelled": int(states.get("cancelled", 0))}  # fmt: skip


FIGURES = CallbackFigures()

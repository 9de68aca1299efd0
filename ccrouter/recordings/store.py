"""The recordings' rows: one per recorded card, the playback audit, the prune's reads."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.db.tables import cards, recording_plays, recordings
from ccrouter.recordings.model import Stored

r = recordings.c


class RecordingStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def started(self, card: str, path: str, uniqueid: str, at: float) -> None:
        """A recording began (MixMonitorStart): its row, or the row restarted for the card."""
        async with self.engine.begin() as conn:
            await conn.execute(sa.delete(recordings).where(r.card == card))
            await conn.execute(sa.insert(recordings).values(
                card=card, path=path, uniqueid=uniqueid, state="recording", started_at=at))

    async def finished(self, card: str, at: float, size: int | None, reason: str) -> None:
        """The recorded channel hung up: `size` of the file, or None when there is none."""
        product = sa.select(cards.c.product).where(cards.c.number == card).scalar_subquery()
        values: dict[str, Any] = {"ended_at": at, "size": size, "reason": reason,
                                  "state": "done" if size is not None else "none",
                                  "product": sa.func.coalesce(product, "")}  # fmt: skip
        async with self.engine.begin() as conn:
            await conn.execute(sa.update(recordings).where(r.card == card).values(**values))

    async def get(self, card: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(recordings).where(r.card == card))).first()
        return dict(row._mapping) if row is not None else None

    async def mark(self, card: str, state: str, reason: str, at: float | None = None) -> None:
        values: dict[str, Any] = {"state": state, "reason": reason}
        if state == "deleted":
            values["deleted_at"] = at
        async with self.engine.begin() as conn:
            await conn.execute(sa.update(recordings).where(r.card == card).values(**values))

    async def audit(self, card: str, at: float, who: str, role: str, result: str,
                    range_: str = "") -> None:  # fmt: skip
        async with self.engine.begin() as conn:
            await conn.execute(sa.insert(recording_plays).values(
                card=card, at=at, who=who, role=role, result=result, range=range_))

    async def plays(self, card: str) -> list[dict[str, Any]]:
        q = sa.select(recording_plays).where(recording_plays.c.card == card).order_by(
            recording_plays.c.id)
        async with self.engine.connect() as conn:
            return [dict(row._mapping) for row in await conn.execute(q)]

    async def on_disk(self) -> list[tuple[Stored, str]]:
        """Every recording that should still be on disk, with the path Asterisk wrote."""
        q = (sa.select(r.card, r.path, sa.func.coalesce(cards.c.product, r.product),
                       r.started_at, r.size)
             .select_from(recordings.outerjoin(cards, cards.c.number == r.card))
             .where(r.state.in_(("done", "recording"))))  # fmt: skip
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return [(Stored(c, p, prod or "", at, size or 0), p) for c, p, prod, at, size in rows]

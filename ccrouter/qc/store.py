"""Live-listening sessions and QC grades in the database (tables `qc_spy`, `qc_grades`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.db.tables import qc_grades, qc_spy, recordings

SPY_OPEN = ("ringing", "listening")


def _spy_out(row: Any) -> dict[str, Any]:
    out = dict(row)
    start, end = out["started_at"], out["ended_at"]
    out["duration_s"] = round(end - start, 1) if start is not None and end is not None else None
    return out


def _grade_out(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["items"] = json.loads(out["items"])
    return out


class QcStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    # --- live listening -------------------------------------------------------------------

    async def spy_requested(self, *, card: str, who: str, role: str, mode: str, device: str,
                            spyee: str, at: float) -> int:  # fmt: skip
        async with self._engine.begin() as conn:
            result = await conn.execute(qc_spy.insert().values(
                card=card, who=who, role=role, mode=mode, device=device, spyee=spyee,
                state="ringing", requested_at=at))  # fmt: skip
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    async def spy_update(self, spy_id: int, **values: Any) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(qc_spy.update().where(qc_spy.c.id == spy_id).values(**values))

    async def spy_get(self, spy_id: int) -> dict[str, Any] | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(qc_spy).where(qc_spy.c.id == spy_id))).first()
        return None if row is None else _spy_out(row._mapping)

    async def spies(self, card: str) -> list[dict[str, Any]]:
        query = sa.select(qc_spy).where(qc_spy.c.card == card).order_by(qc_spy.c.id)
        async with self._engine.connect() as conn:
            return [_spy_out(r) for r in (await conn.execute(query)).mappings().all()]

    async def close_open_spies(self, at: float, reason: str) -> int:
        """Sessions left open by a stop or a crash: ended now, with the reason."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                qc_spy.update().where(qc_spy.c.state.in_(SPY_OPEN))
                .values(state="failed", reason=reason, ended_at=at))  # fmt: skip
        return int(result.rowcount or 0)

    # --- grades ---------------------------------------------------------------------------

    async def add_grade(self, *, card: str, operator: str, interface: str, queue: str,
                        at: float, by: str, score: float, items: Sequence[dict[str, Any]],
                        comment: str) -> dict[str, Any]:  # fmt: skip
        values = {"card": card, "operator": operator, "interface": interface, "queue": queue,
                  "graded_at": at, "graded_by": by, "score": score,
                  "items": json.dumps(list(items), ensure_ascii=False), "comment": comment}
        async with self._engine.begin() as conn:
            result = await conn.execute(qc_grades.insert().values(**values))
        key = result.inserted_primary_key
        assert key is not None
        return {"id": int(key[0]), **values, "items": list(items)}

    async def grades_of_card(self, card: str) -> list[dict[str, Any]]:
        query = sa.select(qc_grades).where(qc_grades.c.card == card).order_by(qc_grades.c.id)
        async with self._engine.connect() as conn:
            return [_grade_out(r) for r in (await conn.execute(query)).mappings().all()]

    async def grades(self, *, start: float, end: float, operators: Sequence[str] = (),
                     limit: int | None = None, newest_first: bool = False
                     ) -> list[dict[str, Any]]:  # fmt: skip
        c = qc_grades.c
        query = sa.select(qc_grades).where(c.graded_at >= start, c.graded_at < end)
        if operators:
            query = query.where(c.operator.in_(list(operators)))
        query = query.order_by(c.graded_at.desc() if newest_first else c.graded_at, c.id)
        if limit is not None:
            query = query.limit(limit)
        async with self._engine.connect() as conn:
            return [_grade_out(r) for r in (await conn.execute(query)).mappings().all()]

    async def recorded(self, card: str) -> bool:
        """Whether the card has a recording row (the recordings feature's table)."""
        query = sa.select(recordings.c.state).where(recordings.c.card == card)
        async with self._engine.connect() as conn:
            state = (await conn.execute(query)).scalar()
        return state is not None and state not in ("none",)

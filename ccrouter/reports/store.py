"""KPI queries: the counts behind SL/ASA/AAR/CSAT, computed in SQL (one GROUP BY per section).

Only aggregates leave the database: the rows are never loaded into Python. Calls are placed in a
period by `started_at` (when the call reached ccrouter). Interval buckets are local time: the
time zone's UTC offset at the start of the period is used for the whole period.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.db.tables import cards
from ccrouter.reports.model import NOT_OFFERED_KINDS, QUEUE_OUTCOMES, Counts, add, kpi_dict

Interval = Literal["hour", "day"]
WIDTH_S: Final[dict[str, int]] = {"hour": 3600, "day": 86400}


@dataclass(frozen=True, slots=True)
class Bucket:
    start: float
    counts: Counts


@dataclass(frozen=True, slots=True)
class KpiCounts:
    total: Counts
    queues: dict[str, Counts]
    operators: dict[tuple[str, str], Counts]
    """(operator name, interface) -> counts of the calls they answered."""
    intervals: list[Bucket]
    hours: list[Bucket]


def utc_offset_s(timezone: str, at: float) -> int:
    tz = zoneinfo.ZoneInfo(timezone)
    offset = dt.datetime.fromtimestamp(at, tz).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def local_midnight(timezone: str, now: float) -> float:
    """The start of `now`'s day in `timezone`, as epoch seconds."""
    tz = zoneinfo.ZoneInfo(timezone)
    day = dt.datetime.fromtimestamp(now, tz).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp()


def _columns(sl_threshold_s: int, card_deadline_s: int) -> list[Any]:
    c = cards.c
    answered = c.outcome == "answered"
    talked = sa.and_(answered, c.talk_s.is_not(None))
    ended = sa.and_(answered, c.ended_at.is_not(None))
    done = sa.and_(ended, c.completed_at.is_not(None))
    acw = sa.case((c.completed_at > c.ended_at, c.completed_at - c.ended_at), else_=0.0)

    def n(cond: Any) -> Any:
        return sa.func.coalesce(sa.func.sum(sa.case((cond, 1), else_=0)), 0)

    def total(cond: Any, value: Any) -> Any:
        return sa.func.coalesce(sa.func.sum(sa.case((cond, value), else_=0)), 0)

    wait = sa.func.coalesce(c.wait_s, 0)
    return [
        sa.func.count().label("offered"),
        n(answered).label("answered"),
        n(sa.and_(answered, wait <= sl_threshold_s)).label("answered_in_sl"),
        n(c.outcome == "abandoned").label("abandoned"),
        n(c.outcome == "short_abandon").label("short_abandons"),
        total(answered, wait).label("wait_answered_s"),
        total(talked, c.talk_s).label("talk_s"),
        n(talked).label("talked"),
        sa.func.count(c.csat).label("rated"),
        n(c.csat >= 4).label("satisfied"),
        sa.func.coalesce(sa.func.sum(c.csat), 0).label("rating_sum"),
        n(ended).label("to_complete"),
        n(done).label("completed"),
        n(sa.and_(done, acw <= card_deadline_s)).label("completed_in_deadline"),
        total(done, acw).label("after_call_s"),
    ]


def _counts(row: Any) -> Counts:
    m = row._mapping
    return Counts(
        offered=int(m["offered"]),
        answered=int(m["answered"]),
        answered_in_sl=int(m["answered_in_sl"]),
        abandoned=int(m["abandoned"]),
        short_abandons=int(m["short_abandons"]),
        wait_answered_s=float(m["wait_answered_s"]),
        talk_s=float(m["talk_s"]),
        talked=int(m["talked"]),
        rated=int(m["rated"]),
        satisfied=int(m["satisfied"]),
        rating_sum=float(m["rating_sum"]),
        to_complete=int(m["to_complete"]),
        completed=int(m["completed"]),
        completed_in_deadline=int(m["completed_in_deadline"]),
        after_call_s=float(m["after_call_s"]),
    )


def _floor_for(dialect: str) -> Any:
    """An interval's number, floor(x), as each dialect spells it: SQLite's CAST AS INTEGER
    truncates (the same for positive times; its floor() needs the optional math functions),
    PostgreSQL's CAST rounds to the nearest, so it takes floor() first."""
    if dialect == "postgresql":
        return lambda x: sa.cast(sa.func.floor(x), sa.Integer)
    return lambda x: sa.cast(x, sa.Integer)


class Reports:
    def __init__(self, engine: AsyncEngine, *, sl_threshold_s: int, timezone: str,
                 card_deadline_s: int = 120) -> None:  # fmt: skip
        self._engine = engine
        self._t = sl_threshold_s
        self._tz = timezone
        self._deadline = card_deadline_s

    def _where(self, start: float, end: float, queues: Sequence[str]) -> list[Any]:
        c = cards.c
        where = [c.started_at >= start, c.started_at < end, c.outcome.in_(QUEUE_OUTCOMES),
                 sa.or_(c.kind.is_(None), c.kind.not_in(NOT_OFFERED_KINDS))]
        if queues:
            where.append(c.queue.in_(list(queues)))
        return where

    async def per_queue(
        self, start: float, end: float, queues: Sequence[str] = (), where: Sequence[Any] = ()
    ) -> dict[str, Counts]:
        """Counts per queue for calls started in [start, end) (`where`: more conditions)."""
        q = (
            sa.select(cards.c.queue, *_columns(self._t, self._deadline))
            .where(*self._where(start, end, queues), *where)
            .group_by(cards.c.queue)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return {str(r.queue): _counts(r) for r in rows}

    async def today(self, now: float) -> dict[str, dict[str, Any]]:
        """Per queue, the KPIs of the calls started since local midnight (the wallboard's)."""
        counts = await self.per_queue(local_midnight(self._tz, now), now)
        return {q: kpi_dict(c) for q, c in counts.items()}

    async def today_by_interface(self, now: float) -> dict[str, Counts]:
        """Per operator interface, the counts of the calls they answered since local midnight
        (the wallboard's team figures)."""
        c = cards.c
        q = (
            sa.select(c.interface, *_columns(self._t, self._deadline))
            .where(*self._where(local_midnight(self._tz, now), now, ()), c.outcome == "answered")
            .group_by(c.interface)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return {str(r.interface): _counts(r) for r in rows if r.interface}

    async def today_by_team(
        self, now: float, teams: Mapping[str, Sequence[str]]
    ) -> dict[str, dict[str, Any]]:
        """Per team (name -> its operators' interfaces), today's KPIs of the calls they
        answered, as JSON-ready dicts."""
        by_iface = await self.today_by_interface(now)
        out: dict[str, dict[str, Any]] = {}
        for name, interfaces in teams.items():
            total = Counts()
            for iface in dict.fromkeys(interfaces):
                total = add(total, by_iface.get(iface, Counts()))
            out[name] = kpi_dict(total)
        return out

    async def kpi_counts(
        self, start: float, end: float, *, queues: Sequence[str] = (), interval: Interval = "hour",
        where: Sequence[Any] = (),
    ) -> KpiCounts:
        """`where`: more conditions on the cards (a token's scope)."""
        where = [*self._where(start, end, queues), *where]
        cols = _columns(self._t, self._deadline)
        offset = utc_offset_s(self._tz, start)

        floor = _floor_for(self._engine.dialect.name)

        def bucket(width: int) -> Any:
            return floor((cards.c.started_at + offset) / width).label("bucket")

        c = cards.c
        width = WIDTH_S[interval]
        async with self._engine.connect() as conn:
            total = (await conn.execute(sa.select(*cols).where(*where))).one()
            by_queue = (
                await conn.execute(sa.select(c.queue, *cols).where(*where).group_by(c.queue))
            ).all()
            by_op = (
                await conn.execute(
                    sa.select(c.operator, c.interface, *cols)
                    .where(*where, c.outcome == "answered")
                    .group_by(c.operator, c.interface)
                )
            ).all()
            by_interval = []
            for w in (width, 3600):
                b = bucket(w)
                rows = (
                    await conn.execute(sa.select(b, *cols).where(*where).group_by(b).order_by(b))
                ).all()
                by_interval.append([Bucket(float(r.bucket * w - offset), _counts(r)) for r in rows])
        return KpiCounts(
            total=_counts(total),
            queues={str(r.queue): _counts(r) for r in by_queue},
            operators={(r.operator or "", r.interface or ""): _counts(r) for r in by_op},
            intervals=by_interval[0],
            hours=by_interval[1],
        )

"""The demo's numbers: per queue and per hour of the day, from the same KPI SQL as
`/api/v1/reports/kpi` (`ccrouter.reports.store.Reports`), so they agree with the card rows;
and the per-queue table printed at the end."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.config import Settings
from ccrouter.db.tables import callback_attempts, callback_requests
from ccrouter.demo.day import DAY_START_H, DayClock
from ccrouter.reports.model import Counts, kpi
from ccrouter.reports.store import Reports


@dataclass(frozen=True, slots=True)
class QueueLine:
    queue: str
    counts: Counts
    callbacks: int
    """Callback requests made for the queue's target during the run."""


@dataclass(frozen=True, slots=True)
class HourLine:
    hour: int
    """The day's clock hour (8..19)."""
    counts: Counts


@dataclass(frozen=True, slots=True)
class RunReport:
    queues: list[QueueLine]
    total: QueueLine
    hours: list[HourLine]
    sl_threshold_s: int


@dataclass(frozen=True, slots=True)
class CallbackCounts:
    pending: int
    made: int
    """Attempts dialled (one Originate each)."""
    cancelled: int


def add(a: Counts, b: Counts) -> Counts:
    return Counts(**{f: getattr(a, f) + getattr(b, f) for f in Counts.__dataclass_fields__})


def reports(engine: AsyncEngine, settings: Settings) -> Reports:
    return Reports(engine, sl_threshold_s=settings.reports.sl_threshold_s,
                   timezone=settings.reports.timezone)  # fmt: skip


async def callback_counts(engine: AsyncEngine, since: float) -> CallbackCounts:
    r, a = callback_requests.c, callback_attempts.c
    async with engine.connect() as conn:
        states: dict[str, int] = dict((await conn.execute(
            sa.select(r.state, sa.func.count()).where(r.created_at >= since).group_by(r.state)
        )).tuples().all())  # fmt: skip
        made = (await conn.execute(
            sa.select(sa.func.count()).where(a.started_at >= since))).scalar_one()  # fmt: skip
    return CallbackCounts(pending=int(states.get("pending", 0) + states.get("dialing", 0)),
                          made=int(made), cancelled=int(states.get("cancelled", 0)))  # fmt: skip


async def callbacks_by_queue(engine: AsyncEngine, settings: Settings, since: float
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


async def run_report(engine: AsyncEngine, settings: Settings, since: float, until: float,
                     clock: DayClock | None) -> RunReport:  # fmt: skip
    """The run's numbers: calls started in [since, until). Hours by the day's clock (without
    a day: none)."""
    rep = reports(engine, settings)
    per_queue = await rep.per_queue(since, until)
    cbs = await callbacks_by_queue(engine, settings, since)
    names = sorted(set(per_queue) | set(cbs))
    lines = [QueueLine(q, per_queue.get(q, Counts()), cbs.get(q, 0)) for q in names]
    total = QueueLine("total", sum_counts(x.counts for x in lines), sum(x.callbacks for x in lines))
    hours: list[HourLine] = []
    if clock is not None:
        last = clock.hour_of(until)
        for hour in range(DAY_START_H, last + 1):
            start, end = clock.hour_window(hour)
            end = until if hour == last else min(end, until)  # the last one: up to the end
            counts = await rep.per_queue(max(start, since) if hour > DAY_START_H else since, end)
            hours.append(HourLine(hour, sum_counts(counts.values())))
    return RunReport(lines, total, hours, settings.reports.sl_threshold_s)


def sum_counts(items: Iterable[Counts]) -> Counts:
    total = Counts()
    for c in items:
        total = add(total, c)
    return total


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _secs(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}s"


HEADER: Final = ("queue", "offered", "answered", "abandoned", "short", "SL", "ASA", "AAR",
                 "CSAT", "callbacks")  # fmt: skip


def cells(line: QueueLine) -> tuple[str, ...]:
    c = line.counts
    k = kpi(c)
    base = c.offered - c.short_abandons
    sl = f"{c.answered_in_sl}/{base}" + (f" {_pct(k.sl)}" if k.sl is not None else "")
    csat = "-" if k.csat is None else f"{_pct(k.csat)} ({c.rated})"
    return (line.queue, str(c.offered), str(c.answered), str(c.abandoned),
            str(c.short_abandons), sl, _secs(k.asa_s), _pct(k.aar), csat,
            str(line.callbacks))  # fmt: skip


def table_text(report: RunReport) -> str:
    """The per-queue table, as plain aligned text (SL x/y: answered within the threshold /
    offered less short abandons)."""
    rows: Sequence[tuple[str, ...]] = [HEADER, *map(cells, report.queues), cells(report.total)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]

    def fmt(r: tuple[str, ...]) -> str:
        return "  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                         for i, (v, w) in enumerate(zip(r, widths, strict=True)))  # fmt: skip

    rule = "-" * len(fmt(rows[0]))
    body = [fmt(r) for r in rows[1:-1]]
    return "\n".join([f"SL threshold {report.sl_threshold_s}s", fmt(rows[0]), rule, *body, rule,
                      fmt(rows[-1])])  # fmt: skip

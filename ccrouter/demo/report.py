"""The demo's numbers: per queue and per hour of the day, from the same KPI SQL as
`/api/v1/reports/kpi` (`ccrouter.reports.store.Reports`), so they agree with the card rows;
and the per-queue table printed at the end."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.config import Settings
from ccrouter.demo.day import DAY_START_H, DayClock
from ccrouter.reports.model import Counts, kpi
from ccrouter.reports.store import Reports

if TYPE_CHECKING:
    from ccrouter.wiring import DemoFigures


@dataclass(frozen=True, slots=True)
class QueueLine:
    queue: str
    counts: Counts
    figures: tuple[int, ...] = ()
    """The features' columns (`RunReport.columns`), e.g. requests made for the queue."""


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
    columns: tuple[str, ...] = ()
    """The features' columns after the KPIs (`ccrouter.wiring.demo_figures`)."""


def add(a: Counts, b: Counts) -> Counts:
    return Counts(**{f: getattr(a, f) + getattr(b, f) for f in Counts.__dataclass_fields__})


def reports(engine: AsyncEngine, settings: Settings) -> Reports:
    return Reports(engine, sl_threshold_s=settings.reports.sl_threshold_s,
                   timezone=settings.reports.timezone)  # fmt: skip


async def run_report(engine: AsyncEngine, settings: Settings, since: float, until: float,
                     clock: DayClock | None, figures: Sequence[DemoFigures] = ()
                     ) -> RunReport:  # fmt: skip
    """The run's numbers: calls started in [since, until), with a column per feature figure.
    Hours by the day's clock (without a day: none)."""
    rep = reports(engine, settings)
    per_queue = await rep.per_queue(since, until)
    extra = [await f.per_queue(engine, settings, since) for f in figures]
    names = sorted(set(per_queue).union(*extra))
    lines = [QueueLine(q, per_queue.get(q, Counts()), tuple(e.get(q, 0) for e in extra))
             for q in names]  # fmt: skip
    total = QueueLine("total", sum_counts(x.counts for x in lines),
                      tuple(sum(x.figures[i] for x in lines) for i in range(len(extra))))
    hours: list[HourLine] = []
    if clock is not None:
        last = clock.hour_of(until)
        for hour in range(DAY_START_H, last + 1):
            start, end = clock.hour_window(hour)
            end = until if hour == last else min(end, until)  # the last one: up to the end
            counts = await rep.per_queue(max(start, since) if hour > DAY_START_H else since, end)
            hours.append(HourLine(hour, sum_counts(counts.values())))
    return RunReport(lines, total, hours, settings.reports.sl_threshold_s,
                     tuple(f.column for f in figures))


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
                 "CSAT")  # fmt: skip
"""The KPI columns; a report's features' columns follow (`header`)."""


def header(report: RunReport) -> tuple[str, ...]:
    return (*HEADER, *report.columns)


def cells(line: QueueLine) -> tuple[str, ...]:
    c = line.counts
    k = kpi(c)
    base = c.offered - c.short_abandons
    sl = f"{c.answered_in_sl}/{base}" + (f" {_pct(k.sl)}" if k.sl is not None else "")
    csat = "-" if k.csat is None else f"{_pct(k.csat)} ({c.rated})"
    return (line.queue, str(c.offered), str(c.answered), str(c.abandoned),
            str(c.short_abandons), sl, _secs(k.asa_s), _pct(k.aar), csat,
            *map(str, line.figures))  # fmt: skip


def table_text(report: RunReport) -> str:
    """The per-queue table, as plain aligned text (SL x/y: answered within the threshold /
    offered less short abandons)."""
    head = header(report)
    rows: Sequence[tuple[str, ...]] = [head, *map(cells, report.queues), cells(report.total)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]

    def fmt(r: tuple[str, ...]) -> str:
        return "  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                         for i, (v, w) in enumerate(zip(r, widths, strict=True)))  # fmt: skip

    rule = "-" * len(fmt(rows[0]))
    body = [fmt(r) for r in rows[1:-1]]
    return "\n".join([f"SL threshold {report.sl_threshold_s}s", fmt(rows[0]), rule, *body, rule,
                      fmt(rows[-1])])  # fmt: skip

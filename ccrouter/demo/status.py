"""The demo's live status: the day's clock, calls in progress and waiting, SL, ASA, AAR, and
the features' figures (`ccrouter.wiring.demo_figures`) — a rich table refreshed about once a
second on a terminal, one plain line every few seconds otherwise (a pipe, a log file, a
test)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from ccrouter.demo.report import reports, sum_counts
from ccrouter.reports.model import kpi

if TYPE_CHECKING:
    from ccrouter.wiring import DemoFigures

PLAIN_EVERY_S = 5.0


@dataclass(frozen=True, slots=True)
class Status:
    clock: str
    in_progress: int
    waiting: int
    offered: int
    sl: float | None
    asa_s: float | None
    aar: float | None
    figures: tuple[tuple[str, Mapping[str, int]], ...] = ()
    """Each feature's group: its label, then name -> count."""

    def line(self) -> str:
        sl = "-" if self.sl is None else f"{100 * self.sl:.0f}%"
        asa = "-" if self.asa_s is None else f"{self.asa_s:.0f}s"
        aar = "-" if self.aar is None else f"{100 * self.aar:.0f}%"
        groups = "".join(f" | {label} " + " ".join(f"{k} {v}" for k, v in counts.items())
                         for label, counts in self.figures)  # fmt: skip
        return (f"[{self.clock}] calls {self.in_progress} (waiting {self.waiting}) | "
                f"offered {self.offered} SL {sl} ASA {asa} AAR {aar}{groups}")  # fmt: skip


async def snapshot(app: Any, since: float, clock: str,
                   figures: Sequence[DemoFigures] = ()) -> Status:  # fmt: skip
    """Now: live calls from the tracker's call book, the KPIs of the run from the database."""
    views = app.tracker.book.views()
    waiting = sum(1 for v in views if v.queue and not v.answered)
    counts = sum_counts((await reports(app.engine, app.settings).per_queue(since, time.time()))
                        .values())  # fmt: skip
    k = kpi(counts)
    groups = tuple([(f.label, await f.status(app.engine, since)) for f in figures])
    return Status(clock, len(views), waiting, counts.offered, k.sl, k.asa_s, k.aar, groups)


def _rich_table(s: Status) -> Any:
    from rich.table import Table

    t = Table(title=f"ccrouter demo — {s.clock}", title_justify="left")
    cols = ["in progress", "waiting", "offered", "SL", "ASA", "AAR"]
    for label, counts in s.figures:  # the group's label heads its first column
        cols += [f"{label} {k}" if i == 0 else k for i, k in enumerate(counts)]
    for col in cols:
        t.add_column(col, justify="right")
    sl = "-" if s.sl is None else f"{100 * s.sl:.0f}%"
    asa = "-" if s.asa_s is None else f"{s.asa_s:.0f}s"
    aar = "-" if s.aar is None else f"{100 * s.aar:.0f}%"
    t.add_row(str(s.in_progress), str(s.waiting), str(s.offered), sl, asa, aar,
              *(str(v) for _, counts in s.figures for v in counts.values()))  # fmt: skip
    return t


async def show(app: Any, since: float, clock: Any, stop: asyncio.Event,
               out: TextIO | None = None, figures: Sequence[DemoFigures] = ()
               ) -> None:  # fmt: skip
    """Until `stop`: refresh the status (`clock()` gives the day's HH:MM)."""
    out = out or sys.stdout
    if out.isatty():
        from rich.console import Console
        from rich.live import Live

        with Live(console=Console(file=out), refresh_per_second=2, transient=False) as live:
            while not stop.is_set():
                live.update(_rich_table(await snapshot(app, since, clock(), figures)))
                await _sleep_or_stop(stop, 1.0)
        return
    while not stop.is_set():
        await _sleep_or_stop(stop, PLAIN_EVERY_S)
        print((await snapshot(app, since, clock(), figures)).line(), file=out, flush=True)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)

"""Progress of long work (`make bench`, `make fuzz`, `make soak`): say at the start how long it
takes, then show how far it is with an ETA.

    p = Progress("building cards-10000000.db", total=10_000_000, unit="cards")
    for done in ...:
        p.update(done)         # a line every `every_s` (plain output), or a bar on a TTY
    p.finish()

On a TTY the bar is redrawn in place (`\\r`); anywhere else (a log, CI, a pipe) it prints one
line per step at most every `every_s` seconds, so a long run shows it is alive without
flooding. The ETA is the elapsed time scaled by what is left (a straight line: right for
uniform steps such as batches of rows, rough for uneven ones).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO

BAR_WIDTH = 28


def fmt_duration(seconds: float) -> str:
    """`45 s`, `3 min 20 s`, `1 h 05 min` (rounded to the second)."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def eta_s(done: float, total: float, elapsed_s: float) -> float | None:
    """Seconds left if the rest goes at the pace so far; None before any progress."""
    if done <= 0 or total <= 0:
        return None
    return max(0.0, elapsed_s * (total - done) / done)


class Progress:
    def __init__(
        self,
        what: str,
        total: float,
        *,
        unit: str = "",
        stream: IO[str] | None = None,
        tty: bool | None = None,
        every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if total <= 0:
            raise ValueError(f"{what}: the total must be > 0, got {total}")
        self.what, self.total, self.unit = what, total, unit
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.every_s, self.clock = every_s, clock
        self.started = clock()
        self.done = 0.0
        self._last_shown: float | None = None

    def line(self) -> str:
        """Where the work is: `what: 3,000/10,000 cards (30 %), 12 s, ETA 28 s`."""
        elapsed = self.clock() - self.started
        left = eta_s(self.done, self.total, elapsed)
        pct = 100.0 * self.done / self.total
        unit = f" {self.unit}" if self.unit else ""
        text = (f"{self.what}: {self.done:,.0f}/{self.total:,.0f}{unit} ({pct:.0f} %), "
                f"{fmt_duration(elapsed)}")  # fmt: skip
        if left is not None and self.done < self.total:
            text += f", ETA {fmt_duration(left)}"
        if self.tty:
            filled = round(BAR_WIDTH * min(1.0, self.done / self.total))
            text = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {text}"
        return text

    def update(self, done: float, *, force: bool = False) -> None:
        """Now `done` of `total`; shown on a TTY at once, elsewhere at most every `every_s`
        (and always when `force`)."""
        self.done = min(float(done), self.total)
        now = self.clock()
        due = self._last_shown is None or now - self._last_shown >= self.every_s
        if self.tty:
            self.stream.write("\r" + self.line() + "\x1b[K")
        elif force or due:
            self.stream.write(self.line() + "\n")
        else:
            return
        self._last_shown = now
        self.stream.flush()

    def step(self, n: float = 1, *, force: bool = False) -> None:
        self.update(self.done + n, force=force)

    def finish(self) -> None:
        """The last line: everything done, and how long it took."""
        self.done = self.total
        end = "\n"
        self.stream.write(("\r" + self.line() + "\x1b[K" if self.tty else self.line()) + end)
        self.stream.flush()


def announce(what: str, estimate_s: float | None, note: str = "", *,
             stream: IO[str] | None = None) -> None:  # fmt: skip
    """The line at the start: `bench: about 3 min 10 s; as the last run here`; without an
    estimate, the note alone (or `duration unknown`)."""
    out = stream or sys.stdout
    parts = [f"about {fmt_duration(estimate_s)}"] if estimate_s else []
    parts += [note] if note else []
    out.write(f"{what}: {'; '.join(parts) or 'duration unknown'}\n")
    out.flush()

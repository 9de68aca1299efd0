"""Business hours and holidays of a product line, in its own timezone. Pure.

A `Schedule` is weekly opening ranges (minutes from local midnight, `[start, end)`, end may be
24:00) plus holiday dates (closed all day) in an IANA timezone; `Schedule.always()` is a 24/7
line. `is_open(epoch_seconds)` converts to the line's local time with `zoneinfo`, so daylight
saving changes are honoured. `parse_range("09:00-18:00")` and `overlaps(ranges)` are what the
config checker uses; ranges never cross midnight (write 20:00-24:00 and 00:00-08:00).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Final
from zoneinfo import ZoneInfo

WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekday keys in `datetime.weekday()` order."""

_RANGE: Final = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")

Range = tuple[int, int]
"""[start, end) in minutes after local midnight; 0 <= start < end <= 1440."""


class BadHours(ValueError):
    """A malformed time range, weekday, date or timezone (the message says which)."""


def parse_range(text: str) -> Range:
    """`"09:00-18:00"` -> (540, 1080). BadHours when malformed, empty or crossing midnight."""
    m = _RANGE.match(text.strip())
    if m is None:
        raise BadHours(f"{text!r} is not HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise BadHours(f"{text!r}: hours are 00..23 (24:00 only as an end), minutes 00..59")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end <= start:
        raise BadHours(
            f"{text!r}: the end must be after the start; split a range across midnight "
            "into ..-24:00 and 00:00-.. on the next day"
        )
    return start, end


def overlaps(ranges: Iterable[Range]) -> tuple[Range, Range] | None:
    """The first pair of overlapping ranges (touching ends are fine), or None."""
    ordered = sorted(ranges)
    for a, b in itertools.pairwise(ordered):
        if b[0] < a[1]:
            return a, b
    return None


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadHours(f"{text!r} is not a date YYYY-MM-DD") from None


def timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        raise BadHours(f"unknown timezone {name!r} (an IANA name like Asia/Tashkent)") from None


@dataclass(frozen=True, slots=True)
class Schedule:
    tz: str = "UTC"
    weekly: Mapping[int, tuple[Range, ...]] = field(default_factory=dict)
    """Weekday (0 = Monday) -> opening ranges; a missing day is closed."""
    holidays: frozenset[date] = frozenset()
    always_open: bool = False

    @classmethod
    def always(cls) -> Schedule:
        return cls(always_open=True)

    @classmethod
    def build(
        cls, tz: str, weekly: Mapping[str, Iterable[str]], holidays: Iterable[str] = ()
    ) -> Schedule:
        """From config text: {"mon": ["09:00-18:00"], ...}; BadHours on anything malformed."""
        timezone(tz)
        days: dict[int, tuple[Range, ...]] = {}
        for day, texts in weekly.items():
            if day not in WEEKDAYS:
                raise BadHours(f"unknown weekday {day!r} (use {', '.join(WEEKDAYS)})")
            ranges = tuple(sorted(parse_range(t) for t in texts))
            clash = overlaps(ranges)
            if clash is not None:
                raise BadHours(f"{day}: {_fmt(clash[0])} overlaps {_fmt(clash[1])}")
            days[WEEKDAYS.index(day)] = ranges
        return cls(tz=tz, weekly=days, holidays=frozenset(parse_date(d) for d in holidays))

    def local(self, at: float) -> datetime:
        return datetime.fromtimestamp(at, timezone(self.tz))

    def is_open(self, at: float) -> bool:
        """Is the line open at epoch second `at`?"""
        if self.always_open:
            return True
        now = self.local(at)
        if now.date() in self.holidays:
            return False
        minute = now.hour * 60 + now.minute
        return any(start <= minute < end for start, end in self.weekly.get(now.weekday(), ()))


def _fmt(r: Range) -> str:
    return f"{r[0] // 60:02d}:{r[0] % 60:02d}-{r[1] // 60:02d}:{r[1] % 60:02d}"

"""The demo's day: a time-scaled 08:00-20:00 with a morning and an afternoon peak and a lunch
dip, and the clock that maps real seconds onto it. Pure: plain values in, numbers out.

A run of `length_s` real seconds plays the twelve hours of the day; the call rate at each
moment is the mean rate times the hour's weight (the weights average 1.0, so a day offers
about `rate * length_s` calls whatever its length).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

DAY_START_H: Final = 8
DAY_END_H: Final = 20
HOURS: Final = DAY_END_H - DAY_START_H

HOUR_WEIGHTS: Final = (0.55, 1.0, 1.55, 1.45, 1.0, 0.45, 0.8, 1.3, 1.5, 1.2, 0.75, 0.45)
"""Relative call volume per hour from 08:00: the morning peak at 10-11, the lunch dip at 13,
the afternoon peak at 15-16, the evening tail."""
assert len(HOUR_WEIGHTS) == HOURS and abs(sum(HOUR_WEIGHTS) / HOURS - 1.0) < 1e-9

INCIDENT_HOUR: Final = 11
"""At 11:00 an incident is announced on one line for an hour."""


@dataclass(frozen=True, slots=True)
class DayClock:
    """Real time `t0`..`t0 + length_s` is the day `day_start` (08:00 local, epoch seconds)
    .. 20:00."""

    t0: float
    length_s: float
    day_start: float

    def __post_init__(self) -> None:
        if self.length_s <= 0:
            raise ValueError(f"the day must last more than 0 s, got {self.length_s}")

    @property
    def scale(self) -> float:
        """Simulated day seconds per real second."""
        return HOURS * 3600 / self.length_s

    def sim(self, real: float) -> float:
        """The day's clock (epoch seconds) at real time `real`."""
        return self.day_start + (real - self.t0) * self.scale

    def real(self, sim: float) -> float:
        return self.t0 + (sim - self.day_start) / self.scale

    def hour_of(self, real: float) -> int:
        """The day's clock hour (8..19) at real time `real`, clamped to the day."""
        h = DAY_START_H + int((real - self.t0) * self.scale // 3600)
        return min(max(h, DAY_START_H), DAY_END_H - 1)

    def hour_window(self, hour: int) -> tuple[float, float]:
        """The real [start, end) of the day's clock hour `hour`."""
        start = self.day_start + (hour - DAY_START_H) * 3600
        return self.real(start), self.real(start + 3600)

    def label(self, real: float) -> str:
        """HH:MM of the day's clock (no time zone: the day starts at 08:00)."""
        minutes = int((real - self.t0) * self.scale // 60) + DAY_START_H * 60
        minutes = max(0, min(minutes, DAY_END_H * 60))
        return f"{minutes // 60:02d}:{minutes % 60:02d}"


def rate_at(mean_rate: float, clock: DayClock, real: float) -> float:
    """Calls per real second at `real`: the mean rate shaped by the hour's weight."""
    return mean_rate * HOUR_WEIGHTS[clock.hour_of(real) - DAY_START_H]


def demo_date(today: dt.date, closed: Iterable[str]) -> dt.date:
    """The day the demo plays: the latest weekday (Mon-Fri) on or before `today` that is not
    one of the `closed` ISO dates (holidays), so the configured hours apply as on a working day."""
    skip = set(closed)
    day = today
    while day.weekday() >= 5 or day.isoformat() in skip:
        day -= dt.timedelta(days=1)
    return day


def day_start(date: dt.date, timezone: str) -> float:
    """08:00 of `date` in `timezone`, as epoch seconds."""
    tz = zoneinfo.ZoneInfo(timezone)
    return dt.datetime.combine(date, dt.time(DAY_START_H), tz).timestamp()

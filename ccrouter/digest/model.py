"""When a scheduled report is due and what period it covers. Pure.

A schedule runs at its local time (`At`: daily, or weekly on one weekday) in its time zone;
`latest_due(at, tz, now)` is the last run time at or before `now` (epoch seconds). A run
reports the whole local days before its own day: `period(due, tz, days)` is
[midnight `days` days before, midnight of the run's day). Daylight saving changes are
honoured (`zoneinfo`): a day may be 23 or 25 hours long.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from ccrouter.config.report_schedules import At


def _at(day: dt.date, at: At, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, at.hour, at.minute, tzinfo=tz)


def latest_due(at: At, timezone: str, now: float) -> float:
    """The latest scheduled time at or before `now`."""
    tz = ZoneInfo(timezone)
    local = dt.datetime.fromtimestamp(now, tz)
    day = local.date()
    if at.weekday is not None:
        day -= dt.timedelta(days=(day.weekday() - at.weekday) % 7)
    step = dt.timedelta(days=1 if at.weekday is None else 7)
    when = _at(day, at, tz)
    while when.timestamp() > now:
        day -= step
        when = _at(day, at, tz)
    return when.timestamp()


def next_due(at: At, timezone: str, now: float) -> float:
    """The first scheduled time after `now`."""
    tz = ZoneInfo(timezone)
    last = dt.datetime.fromtimestamp(latest_due(at, timezone, now), tz).date()
    step = dt.timedelta(days=1 if at.weekday is None else 7)
    return _at(last + step, at, tz).timestamp()


def period(due: float, timezone: str, days: int) -> tuple[float, float]:
    """[start, end) of the report of the run at `due`: the `days` local days before its day."""
    tz = ZoneInfo(timezone)
    day = dt.datetime.fromtimestamp(due, tz).date()
    start = day - dt.timedelta(days=days)
    def midnight(d: dt.date) -> float:
        return dt.datetime(d.year, d.month, d.day, tzinfo=tz).timestamp()

    return midnight(start), midnight(day)

"""The demo's day (pure): the shape of its traffic, its clock, the date it plays."""

from __future__ import annotations

import datetime as dt

import pytest

from ccrouter.demo.day import HOUR_WEIGHTS, DayClock, day_start, demo_date, rate_at


def test_the_day_has_two_peaks_and_a_lunch_dip() -> None:
    w = dict(zip(range(8, 20), HOUR_WEIGHTS, strict=True))
    morning = max(range(8, 13), key=w.__getitem__)
    afternoon = max(range(14, 20), key=w.__getitem__)
    assert morning in (10, 11) and afternoon in (15, 16)
    assert w[13] < min(w[12], w[14]) and w[13] < 0.6
    assert sum(HOUR_WEIGHTS) / len(HOUR_WEIGHTS) == pytest.approx(1.0)  # mean rate kept


def test_the_clock_plays_twelve_hours_in_the_run() -> None:
    c = DayClock(t0=1000.0, length_s=120.0, day_start=50_000.0)
    assert c.label(1000.0) == "08:00" and c.label(1060.0) == "14:00"
    assert c.label(1120.0) == "20:00" and c.label(5000.0) == "20:00"
    assert c.hour_of(1000.0) == 8 and c.hour_of(1119.9) == 19 and c.hour_of(2000.0) == 19
    assert c.hour_window(10) == pytest.approx((1020.0, 1030.0))
    assert c.sim(1010.0) == pytest.approx(50_000.0 + 3600)
    assert rate_at(2.0, c, 1025.0) == pytest.approx(2.0 * HOUR_WEIGHTS[2])
    with pytest.raises(ValueError, match="more than 0 s"):
        DayClock(0.0, 0.0, 0.0)


def test_the_day_played_is_a_working_day() -> None:
    saturday = dt.date(2026, 11, 28)
    assert demo_date(saturday, []) == dt.date(2026, 11, 27)
    assert demo_date(dt.date(2026, 11, 27), ["2026-11-27"]) == dt.date(2026, 11, 26)
    assert demo_date(dt.date(2026, 11, 25), []) == dt.date(2026, 11, 25)
    start = dt.datetime.fromtimestamp(day_start(dt.date(2026, 11, 25), "Asia/Tashkent"),
                                      dt.timezone(dt.timedelta(hours=5)))
    assert (start.hour, start.minute, start.day) == (8, 0, 25)

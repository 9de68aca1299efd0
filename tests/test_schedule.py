"""Business hours: ranges, overlaps, holidays, timezones (pure, no event loop)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccrouter.schedule import BadHours, Schedule, overlaps, parse_range

TASHKENT = ZoneInfo("Asia/Tashkent")  # UTC+5, no DST


def at(tz: ZoneInfo, *parts: int) -> float:
    return datetime(*parts, tzinfo=tz).timestamp()  # type: ignore[misc]


def test_parse_range() -> None:
    assert parse_range("09:00-18:00") == (540, 1080)
    assert parse_range("00:00-24:00") == (0, 1440)


@pytest.mark.parametrize("text", ["9-18", "09:00-25:00", "18:00-09:00", "09:00-09:00",
                                  "09:60-10:00", "24:00-24:00", "24:30-24:40", ""])
def test_malformed_ranges(text: str) -> None:
    with pytest.raises(BadHours):
        parse_range(text)


def test_overlaps() -> None:
    assert overlaps([(540, 780), (720, 1080)]) == ((540, 780), (720, 1080))
    assert overlaps([(540, 780), (780, 1080)]) is None  # touching is fine


@given(st.lists(st.tuples(st.integers(0, 1439), st.integers(1, 1440)), max_size=6))
def test_overlaps_agrees_with_brute_force(pairs: list[tuple[int, int]]) -> None:
    ranges = [(a, b) for a, b in pairs if a < b]
    brute = any(
        i != j and max(r[0], s[0]) < min(r[1], s[1])
        for i, r in enumerate(ranges) for j, s in enumerate(ranges)
    )
    assert (overlaps(ranges) is not None) == brute


def test_weekly_hours_in_the_line_timezone() -> None:
    s = Schedule.build("Asia/Tashkent", {"mon": ["09:00-13:00", "14:00-18:00"]})
    # Monday 2026-03-02
    assert s.is_open(at(TASHKENT, 2026, 3, 2, 9, 0))
    assert not s.is_open(at(TASHKENT, 2026, 3, 2, 13, 30))  # lunch
    assert not s.is_open(at(TASHKENT, 2026, 3, 2, 18, 0))  # end is exclusive
    assert not s.is_open(at(TASHKENT, 2026, 3, 3, 10, 0))  # Tuesday: closed
    # 04:00 UTC is 09:00 in Tashkent
    assert s.is_open(at(ZoneInfo("UTC"), 2026, 3, 2, 4, 0))
    assert not s.is_open(at(ZoneInfo("UTC"), 2026, 3, 2, 3, 59))


def test_daylight_saving_is_honoured() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    s = Schedule.build("Europe/Berlin", {d: ["09:00-17:00"] for d in ("mon", "tue", "fri")})
    assert s.is_open(at(berlin, 2026, 1, 5, 9, 0))  # winter, UTC+1
    assert s.is_open(at(berlin, 2026, 7, 6, 9, 0))  # summer, UTC+2
    assert not s.is_open(at(ZoneInfo("UTC"), 2026, 7, 6, 7, 30) - 3600)


def test_holidays_close_the_whole_day() -> None:
    s = Schedule.build("Asia/Tashkent", {"thu": ["00:00-24:00"]}, holidays=["2026-01-01"])
    assert not s.is_open(at(TASHKENT, 2026, 1, 1, 12, 0))
    assert s.is_open(at(TASHKENT, 2026, 1, 8, 12, 0))


def test_always_open() -> None:
    assert Schedule.always().is_open(0.0)


@pytest.mark.parametrize(("tz", "weekly", "holidays", "message"), [
    ("Mars/Olympus", {}, [], "unknown timezone"),
    ("UTC", {"monday": ["09:00-18:00"]}, [], "unknown weekday"),
    ("UTC", {"mon": ["09:00-13:00", "12:00-18:00"]}, [], "overlaps"),
    ("UTC", {}, ["2026-13-01"], "not a date"),
])
def test_build_rejects(tz: str, weekly: dict[str, list[str]], holidays: list[str],
                       message: str) -> None:
    with pytest.raises(BadHours, match=message):
        Schedule.build(tz, weekly, holidays)

"""The SQL report (store/reports.py) against the hand fixture and the Python reference."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.db.tables import cards
from ccrouter.reports.model import CallFacts, count, kpi
from ccrouter.reports.store import Reports, local_midnight
from tests.test_kpi import HAND, T

TZ = "Asia/Tashkent"  # UTC+5, no DST
DAY = dt.datetime(2026, 3, 2, tzinfo=dt.timezone(dt.timedelta(hours=5))).timestamp()


async def insert(engine: AsyncEngine, rows: list[dict[str, Any]]) -> None:
    full = []
    for i, r in enumerate(rows):
        full.append({"number": f"{i + 1:07d}", "created_at": 0.0, "updated_at": 0.0, **r})
    async with engine.begin() as conn:
        await conn.execute(cards.insert(), full)


def row(f: CallFacts, at: float, queue: str = "wallet-ru", iface: str = "PJSIP/1001") -> Any:
    answered = f.outcome == "answered"
    return {"outcome": f.outcome, "wait_s": f.wait_s, "talk_s": f.talk_s, "csat": f.csat,
            "started_at": at, "queue": queue, "operator": "Anna" if answered else None,
            "interface": iface if answered else None}


async def test_sql_counts_equal_the_hand_fixture(engine: AsyncEngine) -> None:
    # HAND at 09:xx local; the same calls again on terminal-ru at 10:xx; one call the day before.
    rows = [row(f, DAY + 9 * 3600 + i * 60) for i, f in enumerate(HAND)]
    rows += [row(f, DAY + 10 * 3600 + i, "terminal-ru", "PJSIP/1002") for i, f in enumerate(HAND)]
    rows.append(row(CallFacts("answered", wait_s=1), DAY - 60))
    await insert(engine, rows)
    reports = Reports(engine, sl_threshold_s=T, timezone=TZ)
    got = await reports.kpi_counts(DAY, DAY + 86400, interval="hour")
    expected = count(HAND, T)
    assert got.queues == {"wallet-ru": expected, "terminal-ru": expected}
    assert kpi(got.total).sl == pytest.approx(2 / 7)
    assert got.total.offered == 18
    assert [b.start for b in got.intervals] == [DAY + 9 * 3600, DAY + 10 * 3600]
    assert [b.counts for b in got.intervals] == [expected, expected]
    assert got.hours == got.intervals
    assert set(got.operators) == {("Anna", "PJSIP/1001"), ("Anna", "PJSIP/1002")}
    assert got.operators[("Anna", "PJSIP/1001")].answered == 4
    by_day = await reports.kpi_counts(DAY - 86400, DAY + 86400, interval="day")
    assert [b.start for b in by_day.intervals] == [DAY - 86400, DAY]  # local midnights
    only = await reports.kpi_counts(DAY, DAY + 86400, queues=["terminal-ru"])
    assert only.total == expected
    # [from, to): the call started exactly at `to` (09:02) is not in the period
    assert await reports.per_queue(DAY, DAY + 9 * 3600 + 120) == {
        "wallet-ru": count(HAND[:2], T)}


async def test_sql_equals_python_reference_on_random_cards(engine: AsyncEngine) -> None:
    rng = random.Random(7)
    outcomes = ["answered", "abandoned", "short_abandon", "overflow", "ivr_only", "lost", None]
    facts = [CallFacts(rng.choice(outcomes), rng.choice([None, *range(0, 60)]),
                       rng.choice([None, rng.randint(0, 900)]),
                       rng.choice([None, 1, 2, 3, 4, 5])) for _ in range(500)]
    await insert(engine, [row(f, DAY + rng.uniform(0, 86399)) for f in facts])
    got = await Reports(engine, sl_threshold_s=T, timezone=TZ).kpi_counts(DAY, DAY + 86400)
    ref = count([CallFacts(f.outcome, f.wait_s, f.talk_s, f.csat) for f in facts], T)
    assert got.total == ref
    assert sum(b.counts.offered for b in got.hours) == ref.offered


def test_local_midnight() -> None:
    assert local_midnight(TZ, DAY + 3600 * 23.5) == DAY
    assert local_midnight("UTC", 90000.0) == 86400.0

"""The QC store on SQLite and on a real PostgreSQL: listening sessions (with their duration,
closed at the next start when a stop left them open) and grades (filters, newest first)."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.qc.spy import SpyService
from ccrouter.qc.store import QcStore
from ccrouter.recordings.store import RecordingStore


async def test_spy_sessions_and_their_duration(engine: AsyncEngine) -> None:
    store = QcStore(engine)
    first = await store.spy_requested(card="0000017", who="sup", role="supervisor",
                                      mode="whisper", device="PJSIP/100",
                                      spyee="PJSIP/1001-0000000a", at=100.0)  # fmt: skip
    second = await store.spy_requested(card="0000017", who="admin", role="admin", mode="listen",
                                       device="PJSIP/200", spyee="PJSIP/1001-0000000a",
                                       at=101.0)  # fmt: skip
    await store.spy_update(first, state="listening", started_at=102.5, spyer_uniqueid="9.1")
    await store.spy_update(first, state="done", ended_at=140.0)
    rows = await store.spies("0000017")
    assert [(r["who"], r["mode"], r["state"], r["duration_s"]) for r in rows] == [
        ("sup", "whisper", "done", 37.5), ("admin", "listen", "ringing", None)]
    assert rows[0]["spyer_uniqueid"] == "9.1" and await store.spies("0000018") == []
    # a stop left the second one open: the next start closes it, saying why
    svc = SpyService(store, ami=None, book=None, clock=lambda: 200.0)  # type: ignore[arg-type]
    task = asyncio.create_task(svc.run())
    try:
        async def closed() -> None:
            while (await store.spy_get(second) or {}).get("state") != "failed":
                await asyncio.sleep(0.01)

        await asyncio.wait_for(closed(), 5)
    finally:
        task.cancel()
    row = await store.spy_get(second)
    assert row is not None and row["ended_at"] == 200.0 and "stopped" in row["reason"]
    assert (await store.spy_get(first) or {})["state"] == "done"  # a finished one is kept


async def test_grades_by_period_operator_and_newest_first(engine: AsyncEngine) -> None:
    store = QcStore(engine)
    items = [{"id": "greeting", "text": "Hi", "weight": 1.0, "met": True}]
    for at, op, score in ((10.0, "op1001", 50.0), (20.0, "op1002", 100.0),
                          (30.0, "op1001", 75.5)):  # fmt: skip
        await store.add_grade(card=f"00000{int(at)}", operator=op, interface="PJSIP/1001",
                              queue="wallet-ru", at=at, by="sup", score=score, items=items,
                              comment="ок")  # fmt: skip
    rows = await store.grades(start=0, end=100)
    assert [(r["operator"], r["score"]) for r in rows] == [
        ("op1001", 50.0), ("op1002", 100.0), ("op1001", 75.5)]
    assert rows[0]["items"] == items and rows[0]["comment"] == "ок"
    last = await store.grades(start=0, end=100, operators=["op1001"], limit=1, newest_first=True)
    assert [(r["graded_at"], r["score"]) for r in last] == [(30.0, 75.5)]
    assert [r["score"] for r in await store.grades(start=15, end=30)] == [100.0]
    assert [g["card"] for g in await store.grades_of_card("0000010")] == ["0000010"]


async def test_recorded_reads_the_recordings_table(engine: AsyncEngine) -> None:
    store, recs = QcStore(engine), RecordingStore(engine)
    assert await store.recorded("0000017") is False
    await recs.started("0000017", "/var/spool/asterisk/monitor/ccrouter/ccrouter-0000017.wav",
                       "1.2", 10.0)  # fmt: skip
    assert await store.recorded("0000017") is True

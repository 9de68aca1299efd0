"""The database refuses writes (locked by another process, disk full) while calls flow.

Calls are still routed at once (the route script never waits on the card writer), the failure is
logged as `card_write_failed`, and once the database accepts writes again every card is stored,
complete and closed: nothing is lost.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from structlog.testing import capture_logs

from ccrouter.dialplan import STATUS_OK, VAR_CARD, VAR_STATUS
from ccrouter.sim import SimCaller
from tests.stack import Stack, add_operator, example_settings, stack, wait_until

WALLET_DID = "712000100"


@contextmanager
def pragma_on_new_connections(st: Stack, pragma: Callable[[], str | None]) -> Iterator[None]:
    """Every database connection ccrouter opens from now on runs `pragma()` (when not None)."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        sql = pragma()
        if sql:
            cursor = dbapi_connection.cursor()
            cursor.execute(sql)
            cursor.close()

    event.listen(st.app.engine.sync_engine, "connect", on_connect)
    try:
        yield
    finally:
        event.remove(st.app.engine.sync_engine, "connect", on_connect)


async def place_answered_calls(st: Stack, n: int) -> list[Any]:
    calls = [st.sim.place_call(SimCaller(f"7901000{i:04d}", dialled=WALLET_DID)) for i in range(n)]
    outcomes = await asyncio.wait_for(asyncio.gather(*(c.finished for c in calls)), 10)
    assert outcomes == ["answered"] * n
    assert all(c.variables[VAR_STATUS] == STATUS_OK for c in calls)
    return calls


async def assert_every_card_complete(st: Stack, calls: list[Any]) -> None:
    await wait_until(lambda: len(st.app.tracker.book) == 0, 10, "cards closed")
    await asyncio.wait_for(st.app.writer.flush(), 10)
    cards = {c["number"]: c for c in await st.cards()}
    assert len(cards) == len(calls)
    for call in calls:
        card = cards[call.variables[VAR_CARD]]
        assert card["uniqueid"] == call.uniqueid
        assert (card["state"], card["outcome"], card["close_reason"]) == (
            "closed", "answered", "normal")  # fmt: skip
        assert card["talk_s"] == 2 and card["operator"] == "Dilnoza"


@asynccontextmanager
async def quick_retry_stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """The example config with failed writes retried after 50 ms, and one operator who answers."""
    settings = example_settings()
    settings = settings.model_copy(update={
        "database": settings.database.model_copy(update={"write_retry_s": 0.05})})  # fmt: skip
    async with stack(tmp_path, settings=settings) as st:
        add_operator(st.sim, "wallet-ru", "PJSIP/1001", "Dilnoza", answer_after_s=0.5,
                     talk_time_s=2)  # fmt: skip
        yield st


async def test_database_locked_by_another_process(tmp_path: Path) -> None:
    async with quick_retry_stack(tmp_path) as st:
        db_file = tmp_path / "cards.db"
        with (
            capture_logs() as logs,
            pragma_on_new_connections(st, lambda: "PRAGMA busy_timeout=50"),
        ):
            await st.app.engine.dispose()  # ccrouter reconnects with the short busy timeout
            locker = sqlite3.connect(db_file, isolation_level=None)
            locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
            try:
                # Routed, queued, answered and finished while no write could be stored:
                calls = await place_answered_calls(st, 5)
                await wait_until(lambda: st.app.writer.stats.failures >= 2, 5, "writes retried")
                assert st.app.writer.stats.rows_written == 0
            finally:
                locker.execute("ROLLBACK")
                locker.close()
            await assert_every_card_complete(st, calls)
    failed = [e for e in logs if e["event"] == "card_write_failed"]
    assert failed and "locked" in failed[0]["error"]


async def test_disk_full_then_space_freed(tmp_path: Path) -> None:
    async with quick_retry_stack(tmp_path) as st:
        await st.app.writer.flush()
        with sqlite3.connect(tmp_path / "cards.db") as probe:
            (pages,) = probe.execute("PRAGMA page_count").fetchone()
        full = {"on": True}
        # SQLite answers SQLITE_FULL ("database or disk is full") as soon as the file would
        # outgrow max_page_count: the same error a full disk gives.
        limit = lambda: f"PRAGMA max_page_count={pages}" if full["on"] else None  # noqa: E731
        with capture_logs() as logs, pragma_on_new_connections(st, limit):
            await st.app.engine.dispose()
            calls = await place_answered_calls(st, 20)
            await wait_until(lambda: st.app.writer.stats.failures >= 2, 5, "writes retried")
            full["on"] = False  # space freed: new connections have no limit
            await st.app.engine.dispose()
            await assert_every_card_complete(st, calls)
    failed = [e for e in logs if e["event"] == "card_write_failed"]
    assert failed and "full" in failed[0]["error"]

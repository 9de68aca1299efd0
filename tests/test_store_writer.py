"""The group-committing card writer against real databases: each test on a SQLite file and on a
real PostgreSQL server (`db_url`); a held lock is SQLite's, a dropped connection PostgreSQL's."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from ccrouter.calls.card_commit_pg import ROWS_PER_STATEMENT
from ccrouter.calls.model.cards import CardWrite
from ccrouter.calls.store import CardStore
from ccrouter.calls.writer import CardWriter, CardWriterStopped
from ccrouter.config import DatabaseSettings
from ccrouter.db.engine import make_engine
from ccrouter.db.migrate import migrate


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "cards.db"


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(db_url, busy_timeout_ms=20)
    await migrate(eng)
    yield eng
    await eng.dispose()


@pytest.fixture
async def sqlite_engine(db_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(f"sqlite+aiosqlite:///{db_path}", busy_timeout_ms=20)
    await migrate(eng)
    yield eng
    await eng.dispose()


_AUDIT_PG = (
    "CREATE TABLE audit (seq SERIAL PRIMARY KEY, number TEXT, notes TEXT)",
    "CREATE FUNCTION card_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO audit (number, notes) VALUES (NEW.number, NEW.notes); RETURN NEW; END $$",
    "CREATE TRIGGER card_audit AFTER UPDATE ON cards FOR EACH ROW EXECUTE FUNCTION card_audit()",
)
_AUDIT_SQLITE = (
    "CREATE TABLE audit (seq INTEGER PRIMARY KEY, number, notes)",
    "CREATE TRIGGER card_audit AFTER UPDATE ON cards BEGIN "
    "INSERT INTO audit (number, notes) VALUES (NEW.number, NEW.notes); END",
)


def settings(**kw: Any) -> DatabaseSettings:
    base: dict[str, Any] = {"commit_window_ms": 20, "batch_max": 500, "write_retry_s": 0.02}
    return DatabaseSettings(**(base | kw))


@asynccontextmanager
async def running(writer: CardWriter) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(writer.run())
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def opened(number: str, **fields: Any) -> CardWrite:
    return CardWrite(number, {"state": "open", **fields}, insert=True)


async def rows(engine: AsyncEngine, sql: str) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(sa.text(sql))).all()]


async def test_thousand_submits_land_in_few_commits(engine: AsyncEngine) -> None:
    writer = CardWriter(engine, settings())
    async with running(writer):
        for i in range(1000):
            writer.submit(opened(f"{i:07d}", caller_num=f"+7700{i:07d}", wait_s=i))
        await writer.flush()
    assert await rows(engine, "SELECT count(*), sum(wait_s) FROM cards") == [(1000, 499500)]
    stats = writer.stats
    assert 1 <= stats.commits <= 10
    assert (stats.rows_written, stats.queue_depth) == (1000, 0)
    assert stats.submitted == 1000 and stats.last_commit_s is not None


async def test_window_commits_without_flush(engine: AsyncEngine) -> None:
    writer = CardWriter(engine, settings(commit_window_ms=10))
    store = CardStore(engine)
    async with running(writer):
        writer.submit(opened("0000011"))
        async with asyncio.timeout(5):
            while await store.get("0000011") is None:
                await asyncio.sleep(0.01)
    await store.close()
    assert writer.stats.commits == 1


async def test_coalescing_insert_and_updates(engine: AsyncEngine) -> None:
    writer = CardWriter(engine, settings())
    async with running(writer):
        writer.submit(opened("A", queue="q1"))
        writer.submit(opened("B"))
        await writer.flush()
        before = writer.stats
        # new card C: insert + updates -> one insert with merged fields, later values win
        writer.submit(opened("C", queue="q1", ivr_path=["menu", "1"]))
        writer.submit(CardWrite("C", {"queue": "q2", "wait_s": 3}))
        writer.submit(CardWrite("C", {"wait_s": 7}))
        writer.submit(opened("D"))
        # existing cards A and B: several updates -> one update each, same shape -> one
        # executemany; later values win
        writer.submit(CardWrite("A", {"operator": "anna", "talk_s": 1}))
        writer.submit(CardWrite("B", {"operator": "boris"}))
        writer.submit(CardWrite("A", {"talk_s": 60}))
        writer.submit(CardWrite("B", {"talk_s": 30}))
        await writer.flush()
    after = writer.stats  # eight writes, four cards: one transaction, four rows
    assert (after.commits - before.commits, after.rows_written - before.rows_written) == (1, 4)
    got = await rows(engine, "SELECT number, queue, wait_s, operator, talk_s, ivr_path FROM cards")
    assert sorted(got) == [
        ("A", "q1", None, "anna", 60, None),
        ("B", None, None, "boris", 30, None),
        ("C", "q2", 7, None, None, '["menu","1"]'),
        ("D", None, None, None, None, None),
    ]


async def test_update_then_insert_for_same_card_merges(engine: AsyncEngine) -> None:
    writer = CardWriter(engine, settings())
    writer.submit(CardWrite("X", {"queue": "q1", "notes": "early"}))
    writer.submit(opened("X", queue="q2"))
    await writer.close()  # not running: close() writes the queue itself
    assert await rows(engine, "SELECT queue, notes, state FROM cards") == [("q2", "early", "open")]


async def test_flush_commits_at_once_and_returns_when_done(engine: AsyncEngine) -> None:
    writer = CardWriter(engine, settings(commit_window_ms=5000))
    store = CardStore(engine)
    async with running(writer):
        await writer.flush()  # nothing pending: returns at once
        writer.submit(opened("0000001"))
        async with asyncio.timeout(2):  # far less than the 5 s window
            await writer.flush()
        assert await store.get("0000001") is not None
        writer.submit(opened("0000002"))
        flushing = asyncio.create_task(writer.flush())
        writer.submit(opened("0000003"))  # submitted after flush() was called
        await flushing
        assert await store.get("0000002") is not None
    await store.close()
    assert writer.stats.queue_depth == 0


async def test_per_card_order_across_many_batches(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for ddl in _AUDIT_PG if engine.dialect.name == "postgresql" else _AUDIT_SQLITE:
            await conn.execute(sa.text(ddl))
    writer = CardWriter(engine, settings(batch_max=3, commit_window_ms=1))
    cards = [f"C{i:02d}" for i in range(12)]
    async with running(writer):
        for number in cards:
            writer.submit(opened(number, notes="0"))
        for step in range(1, 16):
            for number in cards:
                writer.submit(CardWrite(number, {"notes": str(step)}))
            await asyncio.sleep(0.002 * (step % 3))  # let some batches go out mid-stream
        await writer.flush()
    assert writer.stats.commits > 5
    final = await rows(engine, "SELECT number, notes FROM cards ORDER BY number")
    assert final == [(n, "15") for n in cards]
    audit = await rows(engine, "SELECT number, notes FROM audit ORDER BY seq")
    for number in cards:
        steps = [int(notes) for n, notes in audit if n == number]
        assert steps == sorted(steps), f"{number} updated out of order: {steps}"


async def test_close_flushes_stops_and_refuses_later_writes(engine: AsyncEngine) -> None:
    writer = CardWriter(engine, settings(commit_window_ms=5000))
    task = asyncio.create_task(writer.run())
    for i in range(10):
        writer.submit(opened(f"N{i}"))
    await writer.close()
    async with asyncio.timeout(1):
        await task  # run() returned by itself
    assert await rows(engine, "SELECT count(*) FROM cards") == [(10,)]
    with capture_logs() as logs:
        writer.submit(opened("late"))  # must not raise
    assert [e["event"] for e in logs] == ["card_write_after_close"]


async def test_update_for_a_card_never_inserted_is_logged(engine: AsyncEngine) -> None:
    writer = CardWriter(engine, settings())
    with capture_logs() as logs:
        async with running(writer):
            writer.submit(opened("have"))
            await writer.flush()
            writer.submit(CardWrite("have", {"outcome": "answered"}))
            writer.submit(CardWrite("ghost", {"outcome": "answered"}))
            await writer.flush()
    lost = [e for e in logs if e["event"] == "card_update_without_card"]
    assert [(e["card"], e["fields"], e["log_level"]) for e in lost] == [
        ("ghost", {"outcome": "answered"}, "error")
    ]
    assert await rows(engine, "SELECT number, outcome FROM cards") == [("have", "answered")]


async def test_repeated_insert_becomes_an_update(engine: AsyncEngine) -> None:
    writer = CardWriter(engine, settings())
    with capture_logs() as logs:
        async with running(writer):
            writer.submit(opened("dup", queue="q1", notes="first"))
            await writer.flush()
            created = await rows(engine, "SELECT created_at FROM cards")
            writer.submit(opened("dup", queue="q2"))
            writer.submit(opened("new"))
            await writer.flush()
    assert [e["card"] for e in logs if e["event"] == "card_insert_conflict"] == ["dup"]
    got = await rows(engine, "SELECT number, queue, notes, created_at FROM cards ORDER BY id")
    assert got == [("dup", "q2", "first", created[0][0]), ("new", None, None, got[1][3])]


async def test_batch_larger_than_one_statement_is_one_transaction(engine: AsyncEngine) -> None:
    """PostgreSQL binds at most ROWS_PER_STATEMENT rows per statement: a batch of several times
    that (new cards, repeated inserts in a later slice, updates) is still one commit, whole."""
    n = 3 * ROWS_PER_STATEMENT
    writer = CardWriter(engine, settings(commit_window_ms=5000))
    with capture_logs() as logs:
        async with running(writer):
            for i in range(n):
                writer.submit(opened(f"A{i:04d}", queue="q1"))
            await writer.flush()
            before = writer.stats.commits
            for i in range(n):
                writer.submit(CardWrite(f"A{i:04d}", {"outcome": "answered", "wait_s": i}))
                writer.submit(opened(f"B{i:04d}", queue="q2"))
            for i in range(n - 10, n):  # stored already: the last slice's inserts conflict
                writer.submit(opened(f"A{i:04d}", notes="again"))
            await writer.flush()
    assert writer.stats.commits == before + 1
    assert await rows(engine, "SELECT count(*), sum(wait_s) FROM cards WHERE outcome = "
                              "'answered'") == [(n, n * (n - 1) // 2)]  # fmt: skip
    assert await rows(engine, "SELECT count(*) FROM cards WHERE queue = 'q2'") == [(n,)]
    assert await rows(engine, "SELECT count(*) FROM cards WHERE notes = 'again'") == [(10,)]
    conflicts = [e["card"] for e in logs if e["event"] == "card_insert_conflict"]
    assert sorted(conflicts) == [f"A{i:04d}" for i in range(n - 10, n)]


async def test_unwritable_card_is_rejected_alone(engine: AsyncEngine) -> None:
    writer = CardWriter(engine, settings())
    with capture_logs() as logs:
        async with running(writer):
            writer.submit(opened("ok1"))
            writer.submit(opened("bad", notes=object()))  # neither database can bind this
            writer.submit(opened("ok2"))
            await writer.flush()
    assert await rows(engine, "SELECT number FROM cards ORDER BY number") == [("ok1",), ("ok2",)]
    rejected = [e for e in logs if e["event"] == "card_write_rejected"]
    assert [e["card"] for e in rejected] == ["bad"]
    assert writer.stats.rejected == 1


async def test_locked_database_retries_until_all_land(
    sqlite_engine: AsyncEngine, db_path: Path
) -> None:
    engine = sqlite_engine
    writer = CardWriter(engine, settings(write_retry_s=0.02, batch_max=50))
    blocker = sqlite3.connect(db_path, isolation_level=None)
    try:
        with capture_logs() as logs:
            async with running(writer):
                writer.submit(opened("first"))
                await writer.flush()
                blocker.execute("BEGIN EXCLUSIVE")
                for i in range(100):
                    writer.submit(opened(f"L{i:03d}", notes="0"))
                async with asyncio.timeout(5):
                    while writer.stats.failures < 2:
                        await asyncio.sleep(0.01)
                # still accepted while the database is locked; order kept per card
                for i in range(100):
                    writer.submit(CardWrite(f"L{i:03d}", {"notes": "1"}))
                writer.submit(CardWrite("first", {"notes": "later"}))
                assert writer.stats.queue_depth == 201
                asyncio.get_running_loop().call_later(0.15, blocker.rollback)
                async with asyncio.timeout(10):
                    await writer.flush()
    finally:
        blocker.close()
    assert await rows(engine, "SELECT count(*), min(notes), max(notes) FROM cards WHERE "
                      "number LIKE 'L%'") == [(100, "1", "1")]  # fmt: skip
    assert await rows(engine, "SELECT notes FROM cards WHERE number = 'first'") == [("later",)]
    failed = [e for e in logs if e["event"] == "card_write_failed"]
    assert len(failed) >= 2 and writer.stats.failures == len(failed)
    assert all("locked" in e["error"] and e["log_level"] == "error" for e in failed)
    assert [e["retry_in_s"] for e in failed[:3]] == [0.02, 0.04, 0.08][: len(failed[:3])]


async def test_over_limit_warns_but_keeps_everything(engine: AsyncEngine) -> None:
    writer = CardWriter(engine, settings(), max_pending=10)
    with capture_logs() as logs:
        for i in range(25):
            writer.submit(opened(f"M{i:02d}"))
    warnings = [e for e in logs if e["event"] == "card_queue_over_limit"]
    assert [e["pending_cards"] for e in warnings] == [10, 20]
    assert writer.stats.pending_cards == 25
    await writer.close()
    assert await rows(engine, "SELECT count(*) FROM cards") == [(25,)]


async def test_cancelled_writer_reports_pending_and_fails_flush(
    sqlite_engine: AsyncEngine, db_path: Path
) -> None:
    engine = sqlite_engine
    writer = CardWriter(engine, settings(commit_window_ms=5000))
    task = asyncio.create_task(writer.run())
    await asyncio.sleep(0)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # the batch cannot commit; then the writer is cancelled
    try:
        with capture_logs() as logs:
            writer.submit(opened("P1"))
            flushing = asyncio.create_task(writer.flush())
            async with asyncio.timeout(5):
                while writer.stats.failures < 1:
                    await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(CardWriterStopped):
                await flushing
    finally:
        blocker.close()
    stopped = [e for e in logs if e["event"] == "card_writer_stopped_with_pending"]
    assert [e["writes"] for e in stopped] == [1]


async def test_dropped_postgresql_connections_are_retried(pg_url: str) -> None:
    """The server ends every connection of the writer's pool mid-stream (as a restart or a
    failover does): the failed batch is kept, retried on a new connection, nothing is lost."""
    engine = make_engine(pg_url)
    await migrate(engine)
    writer = CardWriter(engine, settings(write_retry_s=0.02, batch_max=50))
    try:
        with capture_logs() as logs:
            async with running(writer):
                writer.submit(opened("first"))
                await writer.flush()  # the pool now holds a connection
                killer = make_engine(pg_url)  # its own connection: the pool's is the victim
                async with killer.connect() as conn:
                    killed = (await conn.execute(sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    ))).scalar_one()  # fmt: skip
                await killer.dispose()
                assert killed >= 1
                for i in range(100):
                    writer.submit(opened(f"K{i:03d}", notes=str(i)))
                async with asyncio.timeout(10):
                    await writer.flush()
        assert await rows(engine, "SELECT count(*) FROM cards WHERE number LIKE 'K%'") == [(100,)]
        failed = [e for e in logs if e["event"] == "card_write_failed"]
        assert failed and all(e.get("permanent") is None for e in failed)
        assert writer.stats.rejected == 0
    finally:
        await writer.close()
        await engine.dispose()


@pytest.mark.parametrize(
    ("make_error", "transient"),
    [
        # What a terminated backend raised in CI mid-batch: the protocol state cut under it.
        (lambda pg: pg.InternalClientError("cannot switch to state 15"), True),
        (lambda pg: pg.ConnectionDoesNotExistError("connection was closed"), True),
        (lambda pg: pg.InterfaceError("connection is closed"), True),
        (lambda pg: pg.AdminShutdownError("terminating connection"), True),
        (lambda pg: pg.UniqueViolationError("duplicate key"), False),
        (lambda pg: pg.NotNullViolationError("null value"), False),
    ],
)
def test_postgresql_errors_are_told_transient_or_permanent(
    make_error: Any, transient: bool
) -> None:
    """A cut connection is retried on a new one; a bad row is isolated, never retried forever."""
    import asyncpg

    from ccrouter.calls.card_commit import is_transient
    from ccrouter.db.dialect import is_broken_connection

    error = make_error(asyncpg)
    assert is_transient(error) is transient
    assert is_broken_connection(error) is transient


async def test_postgresql_updates_find_their_cards_by_index_as_the_table_grows(
        pg_url: str) -> None:  # fmt: skip
    """The writer's UPDATE ... FROM unnest joins up to ROWS_PER_STATEMENT rows with `cards`.
    asyncpg prepares it once per connection; PostgreSQL planned it while `cards` was small and
    kept that plan (a hash join, or a nested loop, over a sequential scan) as the table grew,
    reading the whole table for every statement: here a few dozen small updates on 50 cards,
    then 5 000 new cards and 5 000 updates gave ~80 sequential scans, one a statement. Joined
    by the index whatever was planned before: a handful, from the first statements only."""
    engine = make_engine(pg_url)
    await migrate(engine)
    writer = CardWriter(engine, settings(commit_window_ms=5000))
    try:
        async with running(writer):
            for i in range(50):  # a new database: a few cards, their updates planned now
                writer.submit(opened(f"S{i:04d}", queue="q1"))
            await writer.flush()
            for round_ in range(12):
                for i in range(round_ * 4, round_ * 4 + 4):
                    writer.submit(CardWrite(f"S{i:04d}", {"notes": "first"}))
                await writer.flush()
            for i in range(50, 5050):  # the table grows, autovacuum has not come by
                writer.submit(opened(f"S{i:04d}", queue="q1"))
            await writer.flush()
            for k in range(0, 5000, 1000):
                for i in range(k, k + 1000):
                    writer.submit(CardWrite(f"S{i:04d}", {"notes": "seen"}))
                await writer.flush()
        await writer.close()
        await engine.dispose()  # its backends end, and so report their counters
        engine = make_engine(pg_url)
        assert await rows(engine, "SELECT count(*) FROM cards WHERE notes = 'seen'") == [(5000,)]
        ((scans,),) = await rows(engine, "SELECT seq_scan FROM pg_stat_user_tables "
                                         "WHERE relname = 'cards'")  # fmt: skip
        assert scans < 30, f"{scans} sequential scans of cards"
    finally:
        await writer.close()
        await engine.dispose()

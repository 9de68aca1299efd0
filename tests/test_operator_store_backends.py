"""Operator state written by several processes at once, on both backends: every change lands,
each with its own `version` (SQLite: BEGIN IMMEDIATE; PostgreSQL: the `immediate` advisory
lock, without which two writers read the same max(version) and one fails the unique index)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import asyncpg
import pytest

from ccrouter.db.engine import WRITE_LOCK_KEY, DatabaseLocked, make_engine
from ccrouter.db.migrate import migrate
from ccrouter.routing.state import OperatorRow, OperatorStore
from tests.pg import PgServer


def _login(by: str) -> object:
    def change(row: OperatorRow | None) -> OperatorRow:
        base = row or OperatorRow("", False, False, "", None, 0, 0.0, "")
        return replace(base, logged_in=True, updated_by=by)

    return change


async def test_concurrent_operator_writes_all_land(db_url: str) -> None:
    engines = [make_engine(db_url) for _ in range(4)]
    await migrate(engines[0])
    stores = [OperatorStore(e) for e in engines]
    try:
        ops = [f"op{1000 + i}" for i in range(12)]
        await asyncio.gather(*(
            stores[i % 4].update(op, _login(f"p{i % 4}"))  # type: ignore[arg-type]
            for i, op in enumerate(ops)
        ))  # fmt: skip
        rows = await stores[0].rows()
        assert set(rows) == set(ops) and all(r.logged_in for r in rows.values())
        assert sorted(r.version for r in rows.values()) == list(range(1, 13))
        assert await stores[3].version() == 12
    finally:
        for e in engines:
            await e.dispose()


async def test_a_lock_held_by_another_process_ends_in_database_locked_on_postgresql(
    pg_server: PgServer,
) -> None:
    """Another session holds the write lock of `immediate` transactions: each try waits
    `busy_timeout_ms` (PostgreSQL's lock_timeout), `retry_locked` tries again, then gives up
    with DatabaseLocked naming what it was writing; once released, the write goes through."""
    url = await pg_server.database(migrated=True)
    holder = await asyncpg.connect(pg_server.dsn(url.rsplit("/", 1)[1]))
    engine = make_engine(url, busy_timeout_ms=50)
    store = OperatorStore(engine)
    try:
        await holder.execute("BEGIN")
        await holder.execute(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")
        with pytest.raises(DatabaseLocked, match="writing operator op1001: the database stayed "
                           "locked by another process through 5 tries"):  # fmt: skip
            await store.update("op1001", _login("cli"))  # type: ignore[arg-type]
        await holder.execute("ROLLBACK")
        row = await store.update("op1001", _login("cli"))  # type: ignore[arg-type]
        assert row.logged_in and row.version == 1
    finally:
        await holder.close()
        await engine.dispose()

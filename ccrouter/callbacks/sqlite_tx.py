"""Whole transactions on a dedicated sqlite3 connection, for the callback dispatcher's writes
(see `ccrouter.callbacks.store`): no SQLAlchemy layers, no thread hop."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ccrouter.db.engine import DEFAULT_BUSY_TIMEOUT_MS

T = TypeVar("T")


class Transactions:
    """Whole transactions on a dedicated sqlite3 connection, run on the event loop itself.

    A dispatcher transaction is two point statements and a WAL append (synchronous=NORMAL: no
    fsync) — ~0.1-0.2 ms, less than one hop to a worker thread, which in a busy process also
    waits for the GIL (up to the 5 ms switch interval) each time SQLite hands it back. The one
    wait that can be long, another connection's write lock (the card writer's group commits),
    is spent in `asyncio.sleep` between BEGIN IMMEDIATE tries, never blocking the loop; and this
    connection never runs a WAL checkpoint (it fsyncs): the card writer's connections, which
    write far more, do. The connection opens with the first transaction; `close()` ends it.
    """

    def __init__(self, path: str, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> None:
        self._path = path
        self._busy_timeout_s = busy_timeout_ms / 1000
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, timeout=0)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                       "wal_autocheckpoint=0", "busy_timeout=0"):  # fmt: skip
            conn.execute(f"PRAGMA {pragma}")
        return conn

    async def _begin(self) -> sqlite3.Connection:
        """BEGIN IMMEDIATE: the write lock now (the only statement that can find it taken),
        tried again every 0.1-2 ms while another connection holds it, up to the busy timeout."""
        conn = self._conn
        if conn is None:
            conn = self._conn = self._connect()
        deadline = time.monotonic() + self._busy_timeout_s
        pause = 0.0001
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return conn
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.002)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(query, *args)` between BEGIN IMMEDIATE and COMMIT (ROLLBACK if anything fails)."""
        conn = await self._begin()

        def q(sql: str, params: Sequence[Any]) -> list[Any]:
            return conn.execute(sql, params).fetchall()

        try:
            out = fn(q, *args)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return out

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

"""The async SQLAlchemy engine for SQLite, with the pragmas ccrouter relies on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

DEFAULT_BUSY_TIMEOUT_MS = 5000


def make_engine(url: str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> AsyncEngine:
    """An AsyncEngine for `url`; every SQLite connection gets WAL, synchronous=NORMAL,
    busy_timeout and foreign keys. For a file database the parent directory is created.
    Transactions start with an explicit BEGIN (SQLAlchemy's documented SQLite recipe).

    `busy_timeout_ms` is how long one statement waits for another connection's lock before
    failing with "database is locked" (the card writer then retries the whole batch).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise ValueError(f"database url must be a sqlite URL, got backend {parsed.drivername!r}")
    if parsed.get_driver_name() != "aiosqlite":
        raise ValueError(f"database url must use the async driver sqlite+aiosqlite, got {url!r}")
    if busy_timeout_ms < 0:
        raise ValueError(f"busy_timeout_ms must be >= 0, got {busy_timeout_ms}")
    database = parsed.database or ""
    is_file = database not in ("", ":memory:") and not database.startswith("file:")
    if is_file:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)

    engine = create_async_engine(url)

    @event.listens_for(engine.sync_engine, "connect")
    def _set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if is_file:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin, so DDL
        # (migrations) is transactional and a transaction's reads are consistent.
        dbapi_connection.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine

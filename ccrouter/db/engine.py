"""The async SQLAlchemy engine — SQLite (aiosqlite) with the pragmas ccrouter relies on, or
PostgreSQL (asyncpg) — and what a writer next to other processes needs: `immediate`
transactions and `retry_locked`, on either dialect.

SQLite has one write lock: an `immediate` transaction takes it first (BEGIN IMMEDIATE).
PostgreSQL locks rows, so concurrent writers never wait for a whole-database lock; an
`immediate` transaction there takes one transaction-level advisory lock first
(`pg_advisory_xact_lock(WRITE_LOCK_KEY)`), which gives the commands that read, then write
(operator state's next `version`, migrations) the same one-after-the-other guarantee."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

T = TypeVar("T")

DEFAULT_BUSY_TIMEOUT_MS = 5000
LOCK_ATTEMPTS = 5
_BEGIN = "ccrouter_begin"  # execution option: what follows BEGIN ("" or "IMMEDIATE")
WRITE_LOCK_KEY = 0x63637274  # "ccrt": the advisory lock of PostgreSQL `immediate` transactions
BACKENDS = ("sqlite+aiosqlite", "postgresql+asyncpg")
# SQLSTATEs worth retrying a whole transaction for: serialization failure, deadlock, lock
# not available (lock_timeout / NOWAIT).
_PG_RETRY_STATES = frozenset({"40001", "40P01", "55P03"})


class DatabaseLocked(RuntimeError):
    """Another connection kept the database's write lock through every retry."""


def make_engine(url: str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> AsyncEngine:
    """An AsyncEngine for `url`: SQLite (`sqlite+aiosqlite`) or PostgreSQL
    (`postgresql+asyncpg`). Every SQLite connection gets WAL, synchronous=NORMAL, busy_timeout
    and foreign keys; for a file database the parent directory is created; transactions start
    with an explicit BEGIN (SQLAlchemy's documented SQLite recipe).

    `busy_timeout_ms` is how long one statement waits for another connection's lock before
    failing with "database is locked" (PostgreSQL: `lock_timeout`, SQLSTATE 55P03); the card
    writer then retries the whole batch, `retry_locked` the whole transaction.
    """
    parsed = make_url(url)
    if busy_timeout_ms < 0:
        raise ValueError(f"busy_timeout_ms must be >= 0, got {busy_timeout_ms}")
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend == "postgresql":
        if driver != "asyncpg":
            raise ValueError(
                f"a PostgreSQL database url must use the async driver postgresql+asyncpg, "
                f"got {parsed.drivername!r}"
            )
        return _postgresql_engine(url, busy_timeout_ms)
    if backend != "sqlite":
        raise ValueError(
            f"database url must be one of {', '.join(BACKENDS)}, got {parsed.drivername!r}"
        )
    if driver != "aiosqlite":
        raise ValueError(f"database url must use the async driver sqlite+aiosqlite, got {url!r}")
    database = parsed.database or ""
    is_file = database not in ("", ":memory:") and not database.startswith("file:")
    if is_file:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)

    # The driver's own busy timeout too: it covers the connect itself (its first PRAGMAs).
    engine = create_async_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})

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
        mode = conn.get_execution_options().get(_BEGIN, "")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")

    return engine


def _postgresql_engine(url: str, busy_timeout_ms: int) -> AsyncEngine:
    """asyncpg's pool behind SQLAlchemy; `immediate` transactions take the advisory lock.
    `busy_timeout_ms` becomes the session's `lock_timeout`: like SQLite's busy timeout, a
    statement waits that long for another connection's lock, then fails (SQLSTATE 55P03,
    which `retry_locked` and the card writer retry) instead of waiting forever."""
    settings = {"lock_timeout": str(max(1, int(busy_timeout_ms)))}  # 0 would mean "forever"
    engine = create_async_engine(url, pool_size=10, max_overflow=20,
                                 connect_args={"server_settings": settings})  # fmt: skip

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Connection) -> None:
        if conn.get_execution_options().get(_BEGIN, "") == "IMMEDIATE":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")

    return engine


def sqlite_file(engine: AsyncEngine) -> str | None:
    """The SQLite database file behind `engine`, or None when a second connection would not
    see the same data (in-memory, URI or query-string databases) or it is not SQLite."""
    url = engine.url
    if url.get_backend_name() != "sqlite":
        return None
    db = url.database or ""
    if url.query or db in ("", ":memory:") or db.startswith("file:"):
        return None
    return db


def is_postgresql(engine: AsyncEngine | Connection | Any) -> bool:
    """True for an engine/connection on PostgreSQL (else SQLite)."""
    return bool(engine.dialect.name == "postgresql")


def immediate(engine: AsyncEngine) -> AsyncEngine:
    """The same engine (same pool) whose transactions take the write lock first. SQLite:
    BEGIN IMMEDIATE, waiting up to the busy timeout (a deferred transaction that reads and then
    writes fails at once with "database is locked" when another connection committed after its
    read: SQLite cannot upgrade a stale snapshot, and does not wait). PostgreSQL: the
    transaction's first statement takes the advisory lock `WRITE_LOCK_KEY`, so `immediate`
    transactions run one after the other (other writers are not blocked)."""
    return engine.execution_options(**{_BEGIN: "IMMEDIATE"})


def _sqlstate(error: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE of an asyncpg error, raw or wrapped by SQLAlchemy."""
    for candidate in (error, getattr(error, "orig", None), getattr(error, "__cause__", None)):
        state = getattr(candidate, "sqlstate", None)
        if isinstance(state, str):
            return state
    return None


def is_locked(error: BaseException) -> bool:
    """A lock that another connection kept: SQLite's "database is locked" (SQLITE_BUSY), or
    PostgreSQL's serialization failure / deadlock / lock not available; raw or wrapped."""
    orig = error.orig if isinstance(error, DBAPIError) else error
    if isinstance(orig, sqlite3.OperationalError):
        return "locked" in str(orig)
    return _sqlstate(error) in _PG_RETRY_STATES


async def retry_locked(
    fn: Callable[[], Awaitable[T]], *, what: str, attempts: int = LOCK_ATTEMPTS,
    first_pause_s: float = 0.05,
) -> T:  # fmt: skip
    """`fn()`, run again (after 50, 100, 200 ... ms, jittered) while it fails on a locked
    database (`is_locked`: either dialect); each try already waited the busy timeout. `fn`
    must be a whole transaction. Still locked after `attempts` tries: DatabaseLocked, naming
    `what`."""
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    pause = first_pause_s
    for _ in range(attempts - 1):
        try:
            return await fn()
        except (DBAPIError, sqlite3.OperationalError) as exc:
            if not is_locked(exc):
                raise
        await asyncio.sleep(pause * random.uniform(1.0, 1.5))
        pause *= 2
    try:
        return await fn()
    except (DBAPIError, sqlite3.OperationalError) as exc:
        if not is_locked(exc):
            raise
        orig = exc.orig if isinstance(exc, DBAPIError) else exc
        raise DatabaseLocked(
            f"{what}: the database stayed locked by another process through {attempts} tries "
            f"({orig})"
        ) from exc

"""The few statements whose spelling differs between SQLite and PostgreSQL, behind one seam.

Both dialects speak `INSERT ... ON CONFLICT` (SQLite ≥ 3.24), but SQLAlchemy builds it from each
dialect's own `insert()`: `insert_for(conn, table)` returns the right one for the connection.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def insert_for(conn: Any, table: sa.Table) -> Any:
    """The dialect's insert construct (it has `on_conflict_do_update/do_nothing`, `excluded`)
    for `conn` (a Connection, AsyncConnection or engine: anything with a `dialect`)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def least(a: Any, b: Any) -> Any:
    """The smaller of two non-null values, spelled for both (SQLite's scalar min(a, b) is
    PostgreSQL's LEAST(a, b); a CASE is the same on both)."""
    return sa.case((a <= b, a), else_=b)


def db_now(conn: Any) -> Any:
    """The database server's clock as epoch seconds (so instances' clocks never matter)."""
    if conn.dialect.name == "postgresql":
        return sa.func.extract("epoch", sa.func.clock_timestamp())
    return (sa.func.julianday("now") - 2440587.5) * 86400.0


__all__ = ["db_now", "discard_if_broken", "insert_for", "is_broken_connection", "least"]


def is_broken_connection(error: BaseException) -> bool:
    """An asyncpg error that leaves the connection unusable (closed, lost, terminated)."""
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return False
    # InternalClientError: the protocol was cut mid-operation ("cannot switch to state …;
    # another operation is in progress") when the server ended the connection under it.
    return isinstance(
        error,
        asyncpg.InterfaceError
        | asyncpg.InternalClientError
        | asyncpg.PostgresConnectionError
        | ConnectionError,
    ) or (isinstance(error, asyncpg.PostgresError)
          and str(getattr(error, "sqlstate", "") or "")[:2] in ("08", "57"))  # fmt: skip


async def discard_if_broken(conn: AsyncConnection, error: BaseException) -> None:
    """After `error` on `conn`'s raw driver handle (where SQLAlchemy does not see it): a broken
    connection is invalidated, so the pool opens a new one instead of handing it out again."""
    if is_broken_connection(error):
        await conn.invalidate(error if isinstance(error, Exception) else None)

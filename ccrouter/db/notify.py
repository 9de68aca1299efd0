"""PostgreSQL LISTEN/NOTIFY: a change written by one process wakes another at once.

`notify(conn, channel)` inside a writing transaction sends the notification when that
transaction commits (PostgreSQL; nothing on SQLite, whose readers poll). `listen(engine,
channel, wake)` calls `wake()` on every notification, on a connection of its own held for
the listener's life, opened again after it is lost (meanwhile the caller's polling covers).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ccrouter.db.engine import is_postgresql

log = structlog.get_logger(__name__)

OPERATOR_STATE = "ccrouter_operator_state"
"""Operator login/pause/skills changed (`routing.state`): the node holders reload."""

_RETRY_S = 2.0


async def notify(conn: AsyncConnection, channel: str) -> None:
    if is_postgresql(conn):
        await conn.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": channel})


async def listen(engine: AsyncEngine, channel: str, wake: Callable[[], None]) -> None:
    """Until cancelled: `wake()` at every NOTIFY on `channel` (PostgreSQL only)."""
    if not is_postgresql(engine):
        raise ValueError("LISTEN needs PostgreSQL; SQLite readers poll")
    while True:
        try:
            async with engine.connect() as conn:
                pg: Any = (await conn.get_raw_connection()).driver_connection  # asyncpg's
                lost = asyncio.Event()
                pg.add_termination_listener(lambda *_, lost=lost: lost.set())
                await pg.add_listener(channel, lambda *_: wake())
                log.debug("db_listening", channel=channel)
                wake()  # anything written while nobody listened
                await lost.wait()
                await conn.invalidate()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database is away: the caller polls meanwhile
            log.warning("db_listen_failed", channel=channel, error=str(exc) or type(exc).__name__)
        await asyncio.sleep(_RETRY_S)

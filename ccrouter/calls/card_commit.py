"""One batch of the card writer in one transaction, and which database errors are worth a retry.

The card writer (`writer.py`) coalesces the writes of each card into a `PendingCard` and hands a
batch of them to `commit_batch`: on a pooled connection's aiosqlite handle, BEGIN IMMEDIATE, one
executemany INSERT for all new cards (an insert whose number is already stored is applied as an
update, with a warning), one executemany UPDATE per shape of changed fields, the card-number
reservation when one is due, COMMIT (PostgreSQL: `card_commit_pg.py`, whole-batch statements on
the asyncpg connection). `is_transient` tells the writer whether a failed batch is
kept and retried or isolated card by card.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.calls.card_commit_pg import commit_batch_pg, is_transient_pg
from ccrouter.calls.card_sql import insert_sql, row_values, stored, update_sql
from ccrouter.calls.numbers import Reservation, bump_statement
from ccrouter.db.engine import is_postgresql

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class PendingCard:
    """The coalesced writes of one card waiting to be committed."""

    number: str
    insert: bool
    fields: dict[str, Any]
    first_seq: int
    writes: int
    since: float  # time.monotonic() of the first write


def is_transient(error: Exception) -> bool:
    """Worth retrying: locked, busy, disk full, I/O, connection trouble. (The batch runs on
    the sqlite3 driver, whose errors come unwrapped; checking out the connection goes through
    SQLAlchemy, whose errors are wrapped.)"""
    if isinstance(error, sqlite3.OperationalError | sqlite3.InternalError):
        return True
    on_pg = is_transient_pg(error)  # the PostgreSQL batch's asyncpg errors come unwrapped too
    if on_pg is not None:
        return on_pg
    if isinstance(error, sa_exc.OperationalError | sa_exc.InternalError | sa_exc.TimeoutError):
        return True
    if isinstance(error, sa_exc.DisconnectionError | OSError):
        return True
    # A bare DatabaseError (e.g. a corrupt page) is kept and retried rather than dropped.
    return type(error) in (sa_exc.DatabaseError, sqlite3.DatabaseError)


async def commit_batch(
    engine: AsyncEngine, batch: list[PendingCard], *, now: float, due: Reservation | None
) -> tuple[int, int | None]:
    """Write `batch` (stamped `now`) and, when `due` is set, take that block of card numbers,
    in one transaction: the number of card rows written, and the new mark (None without
    `due`). One transaction on a pooled
    connection's aiosqlite handle: BEGIN IMMEDIATE, the executemany statements, COMMIT — a
    thread hop each, none of SQLAlchemy's per-statement layers (about 1 ms of CPU per
    transaction on 2 cores, more than the rows themselves). On PostgreSQL: `commit_batch_pg`."""
    if is_postgresql(engine):
        return await commit_batch_pg(engine, batch, now=now, due=due)
    inserts = [e for e in batch if e.insert]
    updates = [e for e in batch if not e.insert]
    written = 0
    mark = None
    async with engine.connect() as conn:
        db: Any = (await conn.get_raw_connection()).driver_connection  # aiosqlite's
        await db.execute("BEGIN IMMEDIATE")
        try:
            if inserts:  # one executemany: the columns any new card sets, else NULL
                columns = tuple(sorted(set().union(*(e.fields for e in inserts))))
                rows = [(e.number, *row_values(e.fields, columns), now, now) for e in inserts]
                inserted = (await db.executemany(insert_sql(columns), rows)).rowcount
                written += inserted
                if inserted != len(inserts):
                    updates.extend(await _conflicts(db, inserts, now))
            written += await _update(db, updates, now)
            if due is not None:
                sql = bump_statement(due).compile(dialect=conn.dialect)
                params = [sql.params[k] for k in sql.positiontup or ()]
                async with db.execute(sql.string, params) as cursor:
                    mark = int((await cursor.fetchone())[0])
            await db.commit()
        except Exception:
            with contextlib.suppress(Exception):
                await db.rollback()
            raise
    return written, mark


async def _conflicts(db: Any, inserts: list[PendingCard], now: float) -> list[PendingCard]:
    """Inserts whose number was already stored: applied as updates, with a warning."""
    existing = await stored(db, [e.number for e in inserts], created_before=now)
    out = []
    for entry in inserts:
        if entry.number in existing:
            log.warning("card_insert_conflict", card=entry.number, action="updated instead")
            out.append(PendingCard(entry.number, False, entry.fields, entry.first_seq,
                                   entry.writes, entry.since))  # fmt: skip
    return out


async def _update(db: Any, updates: list[PendingCard], now: float) -> int:
    written = 0
    for columns, group in _by_shape(updates).items():
        rows = [(*row_values(e.fields, columns), now, e.number) for e in group]
        changed = (await db.executemany(update_sql(columns), rows)).rowcount
        written += changed
        if changed != len(rows):
            found = await stored(db, [e.number for e in group])
            for entry in group:
                if entry.number not in found:
                    log.error("card_update_without_card", card=entry.number, fields=entry.fields)
    return written


def _by_shape(entries: list[PendingCard]) -> dict[tuple[str, ...], list[PendingCard]]:
    """Entries grouped by the fields they set: one executemany per group."""
    shapes: defaultdict[tuple[str, ...], list[PendingCard]] = defaultdict(list)
    for entry in entries:
        shapes[tuple(sorted(entry.fields))].append(entry)
    return shapes

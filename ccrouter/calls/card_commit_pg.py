"""The card writer's batch on PostgreSQL: whole-batch statements on the raw asyncpg connection.

The SQLite path (`card_commit.py`) runs executemany on the sqlite3 driver. Here every statement
takes the whole batch as one array per column (`unnest`), so a batch is a handful of round
trips whatever its size, with none of SQLAlchemy's per-row layers: one INSERT ... SELECT FROM
unnest(...) ON CONFLICT (number) DO NOTHING RETURNING number for the new cards (an insert whose
number is already stored is applied as an update, with a warning), one UPDATE ... FROM
unnest(...) per shape of changed fields, the card-number reservation when one is due — in one
transaction. asyncpg prepares each statement text once per connection and caches it.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.calls.card_sql import row_values
from ccrouter.calls.numbers import Reservation, bump_statement
from ccrouter.db.dialect import discard_if_broken, is_broken_connection
from ccrouter.db.tables import BOOL_COLUMNS, INT_COLUMNS, TIME_COLUMNS, cards

if TYPE_CHECKING:
    from ccrouter.calls.card_commit import PendingCard

log = structlog.get_logger(__name__)

_STAMPS: Final = ("created_at", "updated_at")
ROWS_PER_STATEMENT: Final = 64
"""Rows bound into one statement. The arrays are built and encoded (asyncpg) in one go, inside
the event loop: ~9 us a row here (300 rows 2.8 ms, 64 rows 0.63 ms, measured 2026-12-03), and a
batch reaches `batch_max` (500 cards) once the database was slow a moment; every FastAGI accept
and reply would wait behind it. In statements of 64 rows the loop serves them between the round
trips (a few more round trips for a big batch, in the same transaction)."""
_TRANSIENT_CLASSES: Final = frozenset({"08", "40", "53", "57", "58"})
"""SQLSTATE classes worth a retry: connection exception, transaction rollback (serialization,
deadlock), insufficient resources (disk full), operator intervention (shutdown), system error."""


_JOIN_BY_INDEX = ("SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off; "
                  "SET LOCAL enable_mergejoin = off")
"""The UPDATE ... FROM unnest joins at most ROWS_PER_STATEMENT rows with `cards` by its
primary key: a nested loop over the `number` index is always the plan, and these settings
leave the planner no other. asyncpg prepares each statement, and PostgreSQL may keep one plan
for it made while `cards` was small (a new database, before autovacuum analysed it): a hash
join over a sequential scan, or a nested loop over one — the whole table read for every
statement as it grew (0.04 sequential scans of `cards` per call in the end-to-end bench,
8-40 ms an UPDATE of 20-64 rows, PostgreSQL's server taking 0.2-0.4 cores at ~1 000 calls/s;
auto_explain, 2026-12-04). For the writer's own transaction only (SET LOCAL): the pool's
connection keeps the server's settings."""


def pg_type(column: str) -> str:
    """The PostgreSQL type of a `cards` column, as an array element type for `unnest`."""
    if column in TIME_COLUMNS or column in _STAMPS:
        return "float8"
    if column in INT_COLUMNS:
        return "int4"
    if column in BOOL_COLUMNS:
        return "bool"
    return "text"


def _coerce(column: str, value: Any) -> Any:
    """A value as asyncpg binds it for the column (SQLite would have stored the same: a number
    in a TEXT column becomes its text, an integral float in an INTEGER column an integer);
    anything else is left for asyncpg to refuse, as SQLite would."""
    if value is None:
        return None
    kind = pg_type(column)
    if kind == "text" and isinstance(value, int | float):
        return str(int(value)) if isinstance(value, bool) else str(value)
    if kind == "int4" and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind == "float8" and isinstance(value, int):
        return float(value)
    if kind == "bool" and isinstance(value, int):
        return bool(value)
    return value


def _arrays(columns: tuple[str, ...], rows: Iterable[list[Any]]) -> list[list[Any]]:
    """Row-major values -> one list per column."""
    out: list[list[Any]] = [[] for _ in columns]
    for row in rows:
        for i, value in enumerate(row):
            out[i].append(_coerce(columns[i], value))
    return out


def _unnest(columns: tuple[str, ...]) -> str:
    return ", ".join(f"${i}::{pg_type(c)}[]" for i, c in enumerate(columns, 1))


def insert_sql(columns: tuple[str, ...]) -> str:
    """All new cards in one statement; the numbers actually inserted come back."""
    names = ("number", *columns, *_STAMPS)
    cols = ", ".join(f'"{n}"' for n in names)
    return (f'INSERT INTO "{cards.name}" ({cols}) SELECT * FROM unnest({_unnest(names)}) '
            'ON CONFLICT ("number") DO NOTHING RETURNING "number"')  # fmt: skip


def update_sql(columns: tuple[str, ...]) -> str:
    """One shape of updates in one statement; the numbers actually updated come back."""
    names = ("number", *columns, "updated_at")
    sets = ", ".join(f'"{n}" = v."{n}"' for n in (*columns, "updated_at"))
    alias = ", ".join(f'"{n}"' for n in names)
    return (f'UPDATE "{cards.name}" AS c SET {sets} FROM unnest({_unnest(names)}) '
            f'AS v({alias}) WHERE c."number" = v."number" RETURNING c."number"')  # fmt: skip


def is_transient_pg(error: BaseException) -> bool | None:
    """For an asyncpg error: worth a retry (True) or not (False); None for other errors."""
    import asyncpg

    if is_broken_connection(error):
        return True
    if isinstance(error, asyncpg.PostgresError):
        state = str(getattr(error, "sqlstate", "") or "")
        return state[:2] in _TRANSIENT_CLASSES or state == "55P03"
    return None


async def commit_batch_pg(
    engine: AsyncEngine, batch: list[PendingCard], *, now: float, due: Reservation | None
) -> tuple[int, int | None]:
    """`card_commit.commit_batch` for PostgreSQL: the same rows, the same transaction."""
    inserts = [e for e in batch if e.insert]
    updates = [e for e in batch if not e.insert]
    async with engine.connect() as conn:
        pg: Any = (await conn.get_raw_connection()).driver_connection  # asyncpg's
        try:
            return await _transaction(pg, conn.dialect, inserts, updates, now, due)
        except Exception as error:
            await discard_if_broken(conn, error)
            raise


async def _transaction(pg: Any, dialect: Any, inserts: list[PendingCard],
                       updates: list[PendingCard], now: float,
                       due: Reservation | None) -> tuple[int, int | None]:  # fmt: skip
    from ccrouter.calls.card_commit import PendingCard

    written = 0
    async with pg.transaction():
        await pg.execute(_JOIN_BY_INDEX)
        if inserts:
            columns = tuple(sorted(set().union(*(e.fields for e in inserts))))
            names = ("number", *columns, *_STAMPS)
            done, conflicts = await _in_slices(
                pg, insert_sql(columns), names, inserts,
                lambda e: [e.number, *row_values(e.fields, columns), now, now])  # fmt: skip
            written += done
            for e in conflicts:
                log.warning("card_insert_conflict", card=e.number, action="updated instead")
                updates.append(PendingCard(e.number, False, e.fields, e.first_seq, e.writes,
                                           e.since))  # fmt: skip
        written += await _update(pg, updates, now)
        mark = None
        if due is not None:
            sql = bump_statement(due).compile(dialect=dialect)
            params = [sql.params[k] for k in sql.positiontup or ()]
            mark = int(await pg.fetchval(sql.string, *params))
    return written, mark


async def _update(pg: Any, updates: list[PendingCard], now: float) -> int:
    shapes: defaultdict[tuple[str, ...], list[PendingCard]] = defaultdict(list)
    for entry in updates:
        shapes[tuple(sorted(entry.fields))].append(entry)
    written = 0
    for columns, group in shapes.items():
        names = ("number", *columns, "updated_at")
        done, lost = await _in_slices(pg, update_sql(columns), names, group,
                                      functools.partial(_update_row, columns, now))
        written += done
        for entry in lost:
            log.error("card_update_without_card", card=entry.number, fields=entry.fields)
    return written


def _update_row(columns: tuple[str, ...], now: float, e: PendingCard) -> list[Any]:
    return [e.number, *row_values(e.fields, columns), now]


async def _in_slices(pg: Any, text: str, names: tuple[str, ...], entries: list[PendingCard],
                     row: Callable[[PendingCard], list[Any]]
                     ) -> tuple[int, list[PendingCard]]:  # fmt: skip
    """`text` over `entries`, at most ROWS_PER_STATEMENT rows a statement: the rows written,
    and the entries no row came back for (a conflicting insert, an update without its card)."""
    written, missing = 0, []
    for start in range(0, len(entries), ROWS_PER_STATEMENT):
        part = entries[start : start + ROWS_PER_STATEMENT]
        got = await pg.fetch(text, *_arrays(names, (row(e) for e in part)))
        written += len(got)
        if len(got) != len(part):
            back = {r[0] for r in got}
            missing += [e for e in part if e.number not in back]
    return written, missing

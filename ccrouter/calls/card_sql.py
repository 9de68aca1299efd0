"""The card writer's SQL on the sqlite3 driver: statements for the columns a batch sets, the
values in their stored form, and which card numbers have a row."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ccrouter.calls.model.cards import CARD_FIELDS
from ccrouter.db.tables import CARD_COLUMN_ORDER, JSON_COLUMNS, cards, encode_json

_core = frozenset(CARD_COLUMN_ORDER)
if not _core <= CARD_FIELDS or len(_core) != len(CARD_COLUMN_ORDER) or not {
    c.name for c in cards.columns
} >= CARD_FIELDS:  # a feature's fields join both at once (`ccrouter.calls.fields`)
    raise RuntimeError("db.tables.CARD_COLUMN_ORDER is out of step with the cards' CARD_FIELDS")

_STAMPS: Final = ("created_at", "updated_at")
_IN_CHUNK: Final = 500
"""Numbers per `IN (...)` lookup, well under SQLite's bound-parameter limit."""


def insert_sql(columns: tuple[str, ...]) -> str:
    """INSERT of new cards: number, the given columns (the others stay NULL), created_at and
    updated_at, a `?` each; a number already stored is left alone."""
    names = ", ".join(("number", *columns, *_STAMPS))
    marks = ", ".join("?" * (len(columns) + 3))
    return f"INSERT INTO {cards.name} ({names}) VALUES ({marks}) ON CONFLICT (number) DO NOTHING"


def update_sql(columns: tuple[str, ...]) -> str:
    """UPDATE of the given columns and updated_at (then the number), a `?` each."""
    sets = ", ".join(f"{name} = ?" for name in (*columns, "updated_at"))
    return f"UPDATE {cards.name} SET {sets} WHERE number = ?"


def row_values(fields: Mapping[str, Any], columns: tuple[str, ...]) -> list[Any]:
    """`fields` in `columns` order as stored (None where absent, JSON columns encoded)."""
    get = fields.get
    values = [get(c) for c in columns]
    if not JSON_COLUMNS.isdisjoint(columns):
        for i, name in enumerate(columns):
            if name in JSON_COLUMNS:
                values[i] = encode_json(values[i])
    return values


async def stored(db: Any, numbers: list[str], created_before: float | None = None) -> set[str]:
    """Which of `numbers` have a row (created before `created_before`, when given)."""
    found: set[str] = set()
    for i in range(0, len(numbers), _IN_CHUNK):
        chunk = numbers[i : i + _IN_CHUNK]
        sql = f"SELECT number FROM {cards.name} WHERE number IN ({', '.join('?' * len(chunk))})"
        params: list[Any] = list(chunk)
        if created_before is not None:
            sql += " AND created_at != ?"
            params.append(created_before)
        async with db.execute(sql, params) as cursor:
            found.update(row[0] for row in await cursor.fetchall())
    return found

"""The same Alembic migrations make the same schema on SQLite and on a real PostgreSQL server:
tables, columns (type as SQLAlchemy reflects it, nullability, server default), primary keys,
indexes (columns, uniqueness, partial-index condition), foreign keys and unique constraints."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection

from ccrouter.db.engine import make_engine
from ccrouter.db.migrate import migrate
from ccrouter.db.tables import metadata
from tests.pg import PgServer


def _type(t: Any) -> str:
    """A reflected type as a generic name: REAL (SQLite, 8 bytes) and DOUBLE PRECISION
    (PostgreSQL) are both floats of 8 bytes; TEXT is TEXT, INTEGER is INTEGER."""
    if isinstance(t, sa.Float):
        return "FLOAT8"
    return type(t._type_affinity() if t._type_affinity else t).__name__.upper()


def _default(value: str | None) -> str | None:
    """'0' / '0'::text / ''::text  ->  0 / '' (how each dialect spells a literal default)."""
    if value is None:
        return None
    return re.sub(r"::[a-z ]+$", "", value).strip("'")


def _where(value: Any) -> str | None:
    """A partial index's condition, spelled the same (PostgreSQL rewrites IN as = ANY)."""
    if value is None:
        return None
    text = str(value).lower()
    text = re.sub(r"::text(\[\])?", "", text)
    text = re.sub(r"\(state = any \(array\[(.*)\]\)\)", r"state in (\1)", text)
    return re.sub(r"[\s()]", "", text)


SERIAL = "<generated>"
"""An id numbered by the database: PostgreSQL's sequence default (nextval), SQLite's INTEGER
PRIMARY KEY (the rowid)."""


def _column_default(c: Any, pk: tuple[str, ...]) -> str | None:
    default = c.get("default")
    if default is not None and str(default).startswith("nextval("):
        return SERIAL
    if default is None and pk == (c["name"],) and _type(c["type"]) == "INTEGER":
        return SERIAL
    return _default(default)


def _schema(conn: Connection) -> dict[str, Any]:
    insp = sa.inspect(conn)
    out: dict[str, Any] = {}
    for table in sorted(insp.get_table_names()):
        pk = tuple(insp.get_pk_constraint(table)["constrained_columns"])
        cols = [
            (c["name"], _type(c["type"]), c["nullable"], _column_default(c, pk))
            for c in insp.get_columns(table)
        ]
        indexes = sorted(
            (i["name"], tuple(i["column_names"]), bool(i["unique"]),
             _where(i.get("dialect_options", {}).get("postgresql_where")
                    or i.get("dialect_options", {}).get("sqlite_where")))
            for i in insp.get_indexes(table)
        )  # fmt: skip
        fks = sorted(
            (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
            for f in insp.get_foreign_keys(table)
        )
        uniques = sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table))
        out[table] = {"columns": cols, "pk": pk, "indexes": indexes, "fks": fks,
                      "uniques": uniques}  # fmt: skip
    return out


async def _reflect(url: str) -> dict[str, Any]:
    engine = make_engine(url)
    try:
        await migrate(engine)
        async with engine.connect() as conn:
            return await conn.run_sync(_schema)
    finally:
        await engine.dispose()


async def test_migrations_make_the_same_schema_on_both(tmp_path: Any, pg_url: str) -> None:
    on_sqlite = await _reflect(f"sqlite+aiosqlite:///{tmp_path / 'cards.db'}")
    on_pg = await _reflect(pg_url)
    assert set(on_sqlite) == {*metadata.tables, "alembic_version"}
    for table in sorted(on_sqlite):
        assert on_pg[table] == on_sqlite[table], table
    assert on_pg == on_sqlite
    # Not blind: the open-number index is partial on both, with the same condition.
    (open_index,) = [i for i in on_pg["callback_requests"]["indexes"] if "open" in i[0]]
    assert open_index[2:] == (True, "statein'pending','dialing'")


def _diffs(conn: Connection) -> list[object]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(ctx, metadata))


async def test_migrated_postgresql_schema_equals_metadata(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        await migrate(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_diffs) == []
            kinds = await conn.run_sync(
                lambda c: {c2["name"]: str(c2["type"]) for c2 in sa.inspect(c).get_columns("cards")}
            )
    finally:
        await engine.dispose()
    # Epoch seconds keep sub-millisecond precision: 8-byte floats, not PostgreSQL's 4-byte REAL.
    assert kinds["started_at"] == "DOUBLE PRECISION"


async def test_schema_difference_is_seen(pg_server: PgServer) -> None:
    """The comparison is not blind: a column added on one side is reported."""
    url = await pg_server.database(migrated=True)
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("ALTER TABLE cards ADD COLUMN extra TEXT"))
        async with engine.connect() as conn:
            changed = await conn.run_sync(_schema)
            diffs = await conn.run_sync(_diffs)
    finally:
        await engine.dispose()
    assert ("extra", "STRING", True, None) in changed["cards"]["columns"]
    assert [d[0] for d in diffs if isinstance(d, tuple)] == ["remove_column"]

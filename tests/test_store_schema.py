"""Migrations, schema and engine settings of the card store, on both backends (a SQLite file
and a real PostgreSQL database: `db_url`); the pragmas on SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from ccrouter.db.engine import make_engine
from ccrouter.db.migrate import (
    alembic_config,
    current_revision,
    head_revision,
    migrate,
    version_locations,
)
from ccrouter.db.tables import metadata


def _url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(db_url)
    yield eng
    await eng.dispose()


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(_url(tmp_path / "cards.db"))
    yield eng
    await eng.dispose()


async def _table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))


def _diffs(conn: Connection, target: sa.MetaData) -> list[object]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(ctx, target))


async def test_migrate_empty_database_to_head(engine: AsyncEngine) -> None:
    assert await current_revision(engine) is None
    assert await _table_names(engine) == set()
    await migrate(engine)
    assert await current_revision(engine) == head_revision()
    assert head_revision() == max(p.name[:4] for d in version_locations() for p in d.glob("0*.py"))
    assert await _table_names(engine) == {*metadata.tables, "alembic_version"}


async def test_migrate_is_idempotent_and_keeps_data(engine: AsyncEngine) -> None:
    await migrate(engine)
    async with engine.begin() as conn:
        await conn.execute(sa.text("INSERT INTO meta (key, value) VALUES ('k', 'v')"))
    with capture_logs() as logs:
        await migrate(engine)
    assert [e["event"] for e in logs] == ["db_schema_current"]
    async with engine.connect() as conn:
        assert (await conn.execute(sa.text("SELECT value FROM meta"))).scalar_one() == "v"
    assert await current_revision(engine) == head_revision()


async def test_migrated_schema_equals_metadata(engine: AsyncEngine) -> None:
    await migrate(engine)
    async with engine.connect() as conn:
        assert await conn.run_sync(_diffs, metadata) == []
        # The comparison is not blind: a column the migration lacks is reported.
        other = sa.MetaData()
        for table in metadata.tables.values():
            table.to_metadata(other)
        other.tables["cards"].append_column(sa.Column("extra", sa.Text))
        diffs = await conn.run_sync(_diffs, other)
    assert [d[0] for d in diffs if isinstance(d, tuple)] == ["add_column"]


def _upgrade_to(conn: Connection, revision: str) -> None:
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = conn
    command.upgrade(config, revision)


@pytest.mark.parametrize("landed_0008", [True, False])
async def test_an_install_at_any_landed_revision_upgrades_to_the_same_schema(
    engine: AsyncEngine, landed_0008: bool
) -> None:
    """Migration 0008 as it landed also added `callback_attempts.node`; that step is the
    callbacks' 0013 now (added when missing). A database at 0011 made by the landed 0008, and
    one at 0007 upgrading through today's 0008, both end at the metadata."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade_to, "0011" if landed_0008 else "0007")
        if landed_0008:  # what the landed 0008 did besides today's
            await conn.execute(sa.text("ALTER TABLE callback_attempts ADD COLUMN node TEXT"))
    await migrate(engine)
    assert await current_revision(engine) == head_revision()
    async with engine.connect() as conn:
        assert await conn.run_sync(_diffs, metadata) == []


async def test_unknown_revision_fails_clearly(engine: AsyncEngine) -> None:
    await migrate(engine)
    async with engine.begin() as conn:
        await conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(RuntimeError, match="'9999' is unknown"):
        await migrate(engine)


async def test_pragmas_on_every_connection(sqlite_engine: AsyncEngine) -> None:
    await migrate(sqlite_engine)
    async with sqlite_engine.connect() as conn:

        async def pragma(name: str) -> object:
            return (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar_one()

        assert await pragma("journal_mode") == "wal"
        assert await pragma("synchronous") == 1  # NORMAL
        assert await pragma("busy_timeout") == 5000
        assert await pragma("foreign_keys") == 1


async def test_wal_persists_in_the_file(sqlite_engine: AsyncEngine, tmp_path: Path) -> None:
    await migrate(sqlite_engine)
    raw = sqlite3.connect(tmp_path / "cards.db")
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        raw.close()


async def test_make_engine_creates_parent_directory(tmp_path: Path) -> None:
    path = tmp_path / "var" / "lib" / "ccrouter.db"
    eng = make_engine(_url(path), busy_timeout_ms=250)
    try:
        assert path.parent.is_dir()
        await migrate(eng)
        async with eng.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar_one() == 250
        assert path.is_file()
    finally:
        await eng.dispose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql+psycopg://u@h/db", "postgresql\\+asyncpg, got 'postgresql\\+psycopg'"),
        ("postgresql://u@h/db", "postgresql\\+asyncpg"),
        ("mysql+aiomysql://u@h/db", "one of sqlite\\+aiosqlite, postgresql\\+asyncpg"),
        ("sqlite:///x.db", "sqlite\\+aiosqlite"),
    ],
)
def test_make_engine_rejects_other_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_engine(url)


async def test_ddl_is_transactional(engine: AsyncEngine) -> None:
    """Migrations run in one transaction: a failure leaves no half-made schema."""

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE half (x INTEGER)"))
            raise Boom
    assert "half" not in await _table_names(engine)

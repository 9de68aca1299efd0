"""Schema migrations run programmatically at start-up (Alembic, never `create_all`).

An up-to-date database costs one read: `alembic_version` against the head revision read from
the migration files' `revision = ...` lines. Alembic itself (a fifth of a CLI command's start-up)
is imported only when they differ, and then upgrades under the write lock (BEGIN IMMEDIATE;
on PostgreSQL the `immediate` advisory lock, DDL being transactional there too), so
processes starting together on a new database migrate it once, one after the other.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.db.engine import immediate, retry_locked

if TYPE_CHECKING:
    from alembic.config import Config

log = structlog.get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSIONS_DIR = MIGRATIONS_DIR / "versions"

_feature_locations: list[Path] = []


def add_version_location(path: Path) -> None:
    """A feature's migrations directory: its revisions join the one chain (again: no-op)."""
    path = Path(path).resolve()
    if path not in _feature_locations:
        _feature_locations.append(path)


def version_locations() -> tuple[Path, ...]:
    """Every migrations directory: the card store's, then those features added."""
    return (VERSIONS_DIR, *_feature_locations)

_REVISION = re.compile(r"""^revision(?:\s*:[^=\n]*)?\s*=\s*["'](\w+)["']\s*$""", re.M)
_DOWN = re.compile(r"""^down_revision(?:\s*:[^=\n]*)?\s*=\s*(?:None|["'](\w+)["'])\s*$""", re.M)


def alembic_config() -> Config:
    """An Alembic config pointing at ccrouter's migrations (no ini file needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", os.pathsep.join(map(str, version_locations())))
    return config


def _alembic_head() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations in {', '.join(map(str, version_locations()))}")
    return head


def head_revision() -> str:
    """The newest revision, from the files' plain `revision`/`down_revision` lines when they
    form one chain; anything else (a merge, a file they cannot be read from) asks Alembic."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted(p for d in version_locations() for p in d.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        rev, down = _REVISION.findall(text), _DOWN.findall(text)
        if len(rev) != 1 or len(down) != 1:
            return _alembic_head()
        revisions.add(rev[0])
        parents.update(d for d in down if d)
    heads = revisions - parents
    if len(heads) != 1 or not parents <= revisions:
        return _alembic_head()
    return heads.pop()


def _has_version_table_sql(dialect: str) -> str:
    """One catalogue read: does `alembic_version` exist (a row when it does)."""
    if dialect == "postgresql":
        return "SELECT 1 WHERE to_regclass('alembic_version') IS NOT NULL"
    return "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"


def _stored_revisions(connection: Connection) -> tuple[str, ...]:
    """The rows of `alembic_version` (none on a new database), without Alembic."""
    found = connection.exec_driver_sql(_has_version_table_sql(connection.dialect.name)).first()
    if found is None:
        return ()
    rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    return tuple(str(r[0]) for r in rows)


def _known(config: Config, revision: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(config).get_revision(revision) is not None
    except CommandError:
        return False


def _current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection, config: Config) -> None:
    from alembic import command

    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current_revision)


async def _read_revisions(engine: AsyncEngine) -> tuple[str, ...]:
    async with engine.connect() as conn:
        return await conn.run_sync(_stored_revisions)


async def migrate(engine: AsyncEngine) -> None:
    """Upgrade the database to the newest revision, in one transaction. Works on an empty and
    on an up-to-date database; a database newer than this code fails with a clear error."""
    head = head_revision()
    stored = await retry_locked(lambda: _read_revisions(engine), what="reading the schema version")
    if stored == (head,):
        log.debug("db_schema_current", revision=head)
        return
    await retry_locked(lambda: _upgrade_to(engine, head), what="migrating the database")


async def _upgrade_to(engine: AsyncEngine, head: str) -> None:
    config = alembic_config()
    async with immediate(engine).begin() as conn:
        before = await conn.run_sync(_current_revision)  # again: under the write lock now
        if before == head:
            log.debug("db_schema_current", revision=head)
            return
        if before is not None and not _known(config, before):
            raise RuntimeError(
                f"database schema revision {before!r} is unknown to this ccrouter "
                f"(head is {head!r}): was it migrated by a newer version?"
            )
        await conn.run_sync(_upgrade, config)
    log.info("db_migrated", from_revision=before, to_revision=head)

"""Schema migrations run programmatically at start-up (Alembic, never `create_all`)."""

from __future__ import annotations

from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

log = structlog.get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    """An Alembic config pointing at ccrouter's migrations (no ini file needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def _known(config: Config, revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(config).get_revision(revision) is not None
    except CommandError:
        return False


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection, config: Config) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current_revision)


async def migrate(engine: AsyncEngine) -> None:
    """Upgrade the database to the newest revision, in one transaction. Works on an empty and
    on an up-to-date database; a database newer than this code fails with a clear error."""
    config = alembic_config()
    head = head_revision()
    async with engine.begin() as conn:
        before = await conn.run_sync(_current_revision)
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

"""What every CLI command that works on the config's database shares."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.config import ConfigInvalid, Settings, load_settings


def settings_or_none(path: Path) -> Settings | None:
    """The settings, or None after printing every error as file:line: key: message."""
    try:
        return load_settings(path)
    except ConfigInvalid as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        return None


@contextlib.asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The config's database, migrated, with quiet logging (a CLI prints its own lines)."""
    from ccrouter.logs import configure_logging
    from ccrouter.store.engine import make_engine
    from ccrouter.store.migrate import migrate

    configure_logging(settings.log.model_copy(update={"level": "warning"}))
    engine = make_engine(settings.database.url)
    try:
        await migrate(engine)
        yield engine
    finally:
        await engine.dispose()

"""What every CLI command that works on the config's database shares."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.config import ConfigInvalid, Settings, load_settings

DEFAULT_CONFIG = Path("config/ccrouter.yaml")
CONFIG_ENV = "CCROUTER_CONFIG"


def default_config() -> Path:
    """The config file a command reads: $CCROUTER_CONFIG, else config/ccrouter.yaml."""
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


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
    from ccrouter.db.engine import make_engine
    from ccrouter.db.migrate import migrate

    configure_logging(settings.log.model_copy(update={"level": "warning"}))
    engine = make_engine(settings.database.url)
    try:
        await migrate(engine)
        yield engine
    finally:
        await engine.dispose()

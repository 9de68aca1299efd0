"""What every CLI command that works on the config's database shares."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccrouter.config import ConfigInvalid, Settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

DEFAULT_CONFIG = Path("config/ccrouter.yaml")
CONFIG_ENV = "CCROUTER_CONFIG"


PACKAGED_CONFIG = Path(__file__).with_name("default.yaml")
"""The sample config an installed wheel carries (copied from config/ccrouter.yaml at build)."""
CHECKOUT_CONFIG = Path(__file__).resolve().parents[1] / DEFAULT_CONFIG
"""The same sample in a checkout (an editable install has no packaged copy)."""


def default_config() -> Path:
    """The config file a command reads: $CCROUTER_CONFIG, else ./config/ccrouter.yaml, else
    the sample config installed with the package (see `packaged_database_url`)."""
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    if DEFAULT_CONFIG.exists():
        return DEFAULT_CONFIG
    for sample in (PACKAGED_CONFIG, CHECKOUT_CONFIG):
        if sample.exists():
            os.environ.setdefault("CCROUTER_DATABASE_URL", PACKAGED_DATABASE_URL)
            return sample
    return DEFAULT_CONFIG  # missing: the command names it in its error


PACKAGED_DATABASE_URL = "sqlite+aiosqlite:///var/ccrouter.db"
"""With the packaged sample config, the database is ./var/ccrouter.db of the working directory
(the sample's own path is relative to its file, which would be inside site-packages); an
explicit CCROUTER_DATABASE_URL still wins."""


def settings_or_none(path: Path) -> Settings | None:
    """The settings, or None after printing every error as file:line: key: message."""
    try:
        return load_settings(path)
    except ConfigInvalid as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        return None


def run_command(main: Coroutine[Any, Any, int], command: str) -> int:
    """Run a command's coroutine; a database still locked after the retries is exit code 1 with
    `command: what: the database stayed locked ...`, not a traceback."""
    from ccrouter.db.engine import DatabaseLocked

    try:
        return asyncio.run(main)
    except DatabaseLocked as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return 1


@contextlib.asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The config's database, migrated, with quiet logging (a CLI prints its own lines).

    Next to a running daemon: every transaction begins IMMEDIATE (takes the write lock first,
    waiting up to the busy timeout, so no read-then-write can fail on a concurrent writer's
    commit), and the commands retry a transaction while the database stays locked
    (`ccrouter.db.engine.retry_locked`)."""
    from ccrouter.db.engine import immediate, make_engine
    from ccrouter.db.migrate import migrate
    from ccrouter.logs import configure_logging

    configure_logging(settings.log.model_copy(update={"level": "warning"}))
    engine = make_engine(settings.database.url)
    try:
        await migrate(engine)
        yield immediate(engine)
    finally:
        await engine.dispose()

"""Alembic environment for ccrouter's database.

Normally run through `ccrouter.db.migrate.migrate(engine)`, which passes an open connection
in `config.attributes["connection"]`. From the command line
(`alembic -c ccrouter/alembic.ini upgrade head`) it opens its own engine on
`CCROUTER_DATABASE_URL` or the ini's `sqlalchemy.url`.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import Connection

from ccrouter.db.engine import make_engine
from ccrouter.db.tables import metadata

config = context.config


def _url() -> str:
    url = os.environ.get("CCROUTER_DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database url: set CCROUTER_DATABASE_URL or sqlalchemy.url")
    return url


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things: later migrations copy tables
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine() -> None:
    engine = make_engine(_url())
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_configure_and_run)
    finally:
        await engine.dispose()


def _run_offline() -> None:
    context.configure(
        url=_url(), target_metadata=metadata, literal_binds=True, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
    else:
        asyncio.run(_run_with_own_engine())

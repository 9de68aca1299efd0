"""Shared test helpers. The real Asterisk 22 transcripts live in ../shared/fixtures/asterisk."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

import ccrouter.wiring  # noqa: F401  (every feature's config section, before any settings load)
from ccrouter.db.engine import make_engine
from ccrouter.db.migrate import migrate
from tests.pg import PgServer, PgUnavailable

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FIXTURES = SHARED / "fixtures" / "asterisk"
TOOLS = SHARED / "tools"

if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def agi_transcript(name: str) -> list[tuple[str, bytes]]:
    """An AGI transcript as [(">>" | "<<", line bytes incl. its bare \\n)]."""
    out: list[tuple[str, bytes]] = []
    for raw in fixture_bytes(name).splitlines(keepends=True):
        direction, _, line = raw.partition(b" ")
        out.append((direction.decode(), line))
    return out


@pytest.fixture
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"the Asterisk transcripts are missing: {FIXTURES}")
    return FIXTURES


@pytest.fixture(autouse=True)
def _structlog_config_restored() -> object:
    """A test that runs the CLI in-process configures structlog; later tests must not inherit
    its log level (capture_logs would then miss events)."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


# ---- the database backends -----------------------------------------------------------------
# `db_url` runs a test on both backends: a SQLite file, and a fresh database on a real
# PostgreSQL server the session starts itself (tests/pg.py; skipped, with the reason, where
# the machine has no PostgreSQL binaries).


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    try:
        server = PgServer.start()
    except PgUnavailable as exc:
        pytest.skip(f"PostgreSQL tests skipped: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def pg_url(pg_server: PgServer) -> str:
    """A fresh, empty PostgreSQL database."""
    return await pg_server.database()


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'cards.db'}"
    server: PgServer = request.getfixturevalue("pg_server")
    return await server.database()


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated engine: each test on a SQLite file and on a real PostgreSQL database (a
    test module may define its own `engine` instead)."""
    eng = make_engine(db_url)
    await migrate(eng)
    try:
        yield eng
    finally:
        await eng.dispose()


def is_pg(url: str) -> bool:
    return url.startswith("postgresql")

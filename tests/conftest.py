"""Shared test helpers. The real Asterisk 22 transcripts live in ../shared/fixtures/asterisk."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import structlog

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

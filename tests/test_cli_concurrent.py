"""Ten `ccrouter operator` commands at once, as real processes, next to a running daemon whose
card writer is busy with traffic: none fails on a locked database, and every effect is in the
database and applied to the PBX (issue 11, item 5)."""

from __future__ import annotations

import asyncio
import functools
import importlib
import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection
from structlog.testing import capture_logs

from ccrouter.cli import main
from ccrouter.config import load_settings
from ccrouter.db import engine as store_engine
from ccrouter.db.engine import DatabaseLocked, make_engine, retry_locked
from ccrouter.db.migrate import migrate
from ccrouter.routing.state import OperatorService, OperatorStore
from ccrouter.sim import SimCaller
from tests.conftest import ROOT
from tests.routing_stack import routing_stack
from tests.stack import wait_until
from tests.test_operator_cli import config_for

# the module (ccrouter.db's `migrate` attribute is the function)
migrate_module = importlib.import_module("ccrouter.db.migrate")
WALLET = "712000100"

# Commands on the same operator touch different fields, so the end state does not depend on
# the order they commit in (a read-modify-write outside one transaction would lose some).
COMMANDS: list[tuple[str, ...]] = [
    ("login", "op1001"), ("login", "op1002"), ("login", "op1003"), ("login", "op1004"),
    ("login", "op1005"), ("pause", "op1001", "--reason", "lunch"),
    ("pause", "op1004", "--reason", "coffee"), ("skills", "op1002", "uz=70"),
    ("skills", "op1005", "wallet=90"), ("unpause", "op1003"),
]  # fmt: skip


def caller(i: int) -> SimCaller:
    return SimCaller(f"7901{i:07d}", dialled=WALLET, patience_s=30)


async def cli(config: Path, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCROUTER_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ccrouter", "operator", "--config", str(config), *args,
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_ten_concurrent_operator_commands_all_succeed_and_apply(tmp_path: Path) -> None:
    async with routing_stack(tmp_path) as st:
        db = Path(st.settings.database.url.removeprefix("sqlite+aiosqlite:///"))
        cfg = config_for(tmp_path, db)
        for op in ("op1001", "op1002", "op1003"):  # someone to answer the traffic
            await st.operators.login(op)
        await st.settled()
        writes = st.app.writer.stats.commits
        load = asyncio.create_task(st.sim.run_load(40, 4.0, caller, wait=False))
        await wait_until(lambda: st.app.writer.stats.commits > writes + 3, what="cards written")
        results = await asyncio.gather(*(cli(cfg, *c) for c in COMMANDS))
        assert st.app.writer.stats.commits > writes + 3  # the writer was busy meanwhile
        failed = [(c, code, err.strip().splitlines()[-3:])
                  for c, (code, _out, err) in zip(COMMANDS, results, strict=True) if code != 0]
        assert failed == []
        await load

        states = await st.operators.states()
        assert all(states[f"op100{i}"].logged_in for i in range(1, 6))
        paused = {i: s.pause_reason for i, s in states.items() if s.paused}
        assert paused == {"op1001": "lunch", "op1004": "coffee"}
        assert states["op1002"].skills["uz"] == 70 and states["op1005"].skills["wallet"] == 90
        assert len({row.version for row in (await st.operators.store.rows()).values()}) == 5

        await st.settled()  # the daemon applied them all to the PBX
        assert st.members("terminal-ru")["PJSIP/1004"][1] is True
        assert {m.paused_reason for m in st.sim.members("wallet-ru")
                if m.interface == "PJSIP/1001"} == {"lunch"}  # fmt: skip
        assert st.members("wallet-uz")["PJSIP/1002"] == (30, False)  # uz 70 (was none)
        assert st.members("wallet-uz")["PJSIP/1005"] == (10, False)  # uz 100, wallet 90


@pytest.fixture
def locked_db(tmp_path: Path) -> Iterator[tuple[Path, sqlite3.Connection]]:
    """A migrated database and a connection holding its write lock (BEGIN IMMEDIATE)."""
    db = tmp_path / "cards.db"
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    asyncio.run(migrate(engine))
    asyncio.run(engine.dispose())
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    yield db, holder
    holder.close()


def test_a_write_still_locked_after_the_retries_is_a_clear_error(
    locked_db: tuple[Path, sqlite3.Connection], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    db, _holder = locked_db
    quick = functools.partial(store_engine.make_engine, busy_timeout_ms=20)
    monkeypatch.setattr(store_engine, "make_engine", quick)
    assert main(["operator", "--config", str(config_for(tmp_path, db)), "login", "op1001"]) == 1
    assert capsys.readouterr().err.strip() == (
        "operator login: writing operator op1001: the database stayed locked by another "
        "process through 5 tries (database is locked)"
    )


async def test_a_write_waits_out_a_lock_held_longer_than_the_busy_timeout(
    locked_db: tuple[Path, sqlite3.Connection],
) -> None:
    """Busy timeout 20 ms, the lock held 150 ms: the first tries fail, a later one writes."""
    db, holder = locked_db
    engine = make_engine(f"sqlite+aiosqlite:///{db}", busy_timeout_ms=20)
    service = OperatorService(load_settings(ROOT / "config" / "ccrouter.yaml", environ={}),
                              OperatorStore(engine))  # fmt: skip
    asyncio.get_running_loop().call_later(0.15, holder.execute, "COMMIT")
    try:
        assert (await service.login("op1002")).logged_in
        assert (await service.store.rows())["op1002"].logged_in
    finally:
        await engine.dispose()


async def test_retry_locked_lets_other_errors_through_at_once() -> None:
    tries = 0

    async def broken() -> None:
        nonlocal tries
        tries += 1
        raise sqlite3.OperationalError("no such table: operator_state")

    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        await retry_locked(broken, what="test")
    assert tries == 1
    with pytest.raises(ValueError, match="attempts must be >= 1, got 0"):
        await retry_locked(broken, what="test", attempts=0)
    with pytest.raises(DatabaseLocked):
        await retry_locked(_always_locked, what="test", attempts=2, first_pause_s=0.001)


async def _always_locked() -> None:
    raise sqlite3.OperationalError("database is locked")


# -- the schema check a command makes: one read, Alembic only to upgrade ---------------------


def test_head_revision_from_the_files_is_alembics() -> None:
    assert migrate_module.head_revision() == migrate_module._alembic_head()


def test_head_revision_asks_alembic_when_the_files_are_no_plain_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrate_module, "VERSIONS_DIR", tmp_path)
    monkeypatch.setattr(migrate_module, "_feature_locations", [])
    monkeypatch.setattr(migrate_module, "_alembic_head", lambda: "alembic-said")
    (tmp_path / "0001_a.py").write_text('revision: str = "0001"\ndown_revision = None\n')
    (tmp_path / "0002_b.py").write_text("revision = '0002'\ndown_revision: str | None = '0001'\n")
    assert migrate_module.head_revision() == "0002"
    (tmp_path / "0003_m.py").write_text('revision = "0003"\ndown_revision = ("0001", "0002")\n')
    assert migrate_module.head_revision() == "alembic-said"


async def test_an_older_database_is_upgraded_and_a_current_one_only_read(tmp_path: Path) -> None:
    from alembic import command

    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'cards.db'}")

    def to_0004(conn: Connection) -> None:
        config = migrate_module.alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "0004")

    try:
        async with engine.begin() as conn:
            await conn.run_sync(to_0004)
        assert await migrate_module.current_revision(engine) == "0004"
        with capture_logs() as logs:
            await migrate(engine)
            await migrate(engine)
        assert [e["event"] for e in logs] == ["db_migrated", "db_schema_current"]
        assert logs[0]["from_revision"] == "0004"
        assert await migrate_module.current_revision(engine) == migrate_module._alembic_head()
    finally:
        await engine.dispose()

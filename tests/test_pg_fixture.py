"""The test suite's own PostgreSQL (tests/pg.py): where it looks for binaries, and the one-line
reason the PostgreSQL tests skip with when there are none."""

from __future__ import annotations

from pathlib import Path

import pytest

import tests.pg as pg


def test_no_binaries_is_one_clear_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg.shutil, "which", lambda name: None)
    monkeypatch.setattr(pg.glob, "glob", lambda pattern: [])
    with pytest.raises(pg.PgUnavailable) as info:
        pg.find_bindir()
    reason = str(info.value)
    assert "\n" not in reason
    assert reason == ("no PostgreSQL binaries (pg_ctl/initdb not on PATH nor under "
                      "/usr/lib/postgresql/*/bin)")  # fmt: skip


def test_newest_debian_install_is_chosen(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for version in ("9", "15", "13"):
        bindir = tmp_path / version / "bin"
        bindir.mkdir(parents=True)
        (bindir / "pg_ctl").touch()
        (bindir / "initdb").touch()
    monkeypatch.setattr(pg.shutil, "which", lambda name: None)
    found = [str(tmp_path / v / "bin" / "pg_ctl") for v in ("9", "15", "13")]
    monkeypatch.setattr(pg.glob, "glob", lambda pattern: found)
    assert pg.find_bindir() == tmp_path / "15" / "bin"


async def test_the_server_runs_unprivileged_and_hands_out_fresh_databases(
    pg_server: pg.PgServer,
) -> None:
    import asyncpg

    a, b = await pg_server.database(), await pg_server.database(migrated=True)
    assert a != b
    conn = await asyncpg.connect(pg_server.dsn(b.rsplit("/", 1)[1]))
    try:
        version = await conn.fetchval("SHOW server_version_num")
        owner = await conn.fetchval("SELECT usename FROM pg_stat_activity WHERE pid = "
                                    "pg_backend_pid()")  # fmt: skip
        tables = {r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables "
                                                 "WHERE schemaname = 'public'")}  # fmt: skip
    finally:
        await conn.close()
    assert int(version) >= 150000
    assert owner == "postgres"
    assert {"cards", "meta", "callback_requests", "alembic_version"} <= tables
    assert (pg_server.data / "PG_VERSION").exists()

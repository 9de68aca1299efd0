"""`ccrouter token create|list|revoke` on the config's database: the secret is shown once,
stored hashed, and a revoked token no longer authenticates."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa

from ccrouter.cli import main
from ccrouter.db.engine import make_engine
from ccrouter.web.auth import TokenStore
from tests.test_operator_cli import config_for


def token(cfg: Path, *args: str) -> int:
    return main(["token", "--config", str(cfg), *args])


async def lookup(url: str, secret: str) -> object:
    engine = make_engine(url)
    try:
        return await TokenStore(engine).lookup(secret)
    finally:
        await engine.dispose()


async def stored_rows(url: str) -> list[tuple[object, ...]]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return [tuple(r) for r in await conn.execute(sa.text("select * from api_tokens"))]
    finally:
        await engine.dispose()


def test_create_list_revoke(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    db = db_url  # a SQLite file, then a PostgreSQL database
    cfg = config_for(tmp_path, db)
    assert token(cfg, "create", "--role", "operator", "--operator", "op1001", "--name", "dil") == 0
    out = capsys.readouterr().out.splitlines()
    secret = out[-1]
    assert "shown only now" in out[0] and len(secret) >= 20
    stored = asyncio.run(stored_rows(db))
    assert stored and all(secret not in map(str, row) for row in stored)  # only a hash is kept
    info = asyncio.run(lookup(db, secret))
    assert info is not None

    assert token(cfg, "list") == 0
    (line,) = capsys.readouterr().out.splitlines()
    token_id, role, operator, name, *_rest, state = line.split("\t")
    assert (role, operator, name, state) == ("operator", "op1001", "dil", "active")

    assert token(cfg, "revoke", token_id) == 0
    assert asyncio.run(lookup(db, secret)) is None
    assert token(cfg, "revoke", token_id) == 1
    assert "no active token" in capsys.readouterr().err


def test_operator_token_needs_a_known_operator(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config_for(tmp_path, tmp_path / "cards.db")
    assert token(cfg, "create", "--role", "operator", "--operator", "nobody", "--name", "x") == 2
    assert "nobody" in capsys.readouterr().err

"""ccrouter SIGKILLed with callback requests pending and one dialing, then restarted: no request
is lost and none is dialled twice (a real `ccrouter run` subprocess against the simulator), on
a SQLite file and on a real PostgreSQL database."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import structlog

from bench.proc import Daemon, write_config
from ccrouter.callbacks.cli import parse_at
from ccrouter.callbacks.model import Kind
from ccrouter.callbacks.store import CallbackStore
from ccrouter.cli import main as cli_main
from ccrouter.db.engine import make_engine
from ccrouter.db.migrate import migrate
from ccrouter.sim import PbxSimulator, SimCustomer, SimOperator
from tests.stack import wait_until

QUEUES = ("wallet-ru", "wallet-uz", "wallet-tg", "terminal-ru", "terminal-uz", "general-line")
NUMBERS = ("79005550001", "79005550002", "79005550003")
OVERRIDES = {"callbacks": {"pace_s": 0, "poll_s": 0.3, "retry_backoff_s": [0.2],
                           "ring_timeout_s": 300, "prompt": ""}}  # fmt: skip


def rows(db: str, table: str) -> list[dict[str, Any]]:
    """The table as the daemon left it, read on a connection of our own (synchronously: the
    conditions of `wait_until` are plain functions)."""
    if db.startswith("sqlite"):
        path = db.removeprefix("sqlite+aiosqlite:///")
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY id")]

    async def fetch() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(db.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            return [dict(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY id")]
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, fetch()).result(timeout=10)


async def seed(db: str) -> None:
    engine = make_engine(db)
    try:
        await migrate(engine)
        store = CallbackStore(engine)
        for i, number in enumerate(NUMBERS[:2]):
            await store.add(number=number, kind=Kind.CALLBACK, target="wallet-ru",
                            now=time.time(), place_at=1000.0 + i, card=f"card-{i}")  # fmt: skip
    finally:
        await engine.dispose()


async def test_sigkill_with_requests_pending_and_one_dialing(tmp_path: Path, db_url: str) -> None:
    db = db_url  # a SQLite file, then a PostgreSQL database
    sim = PbxSimulator(agi_port=0, secret="demo-secret", time_scale=20.0, noise=True)
    await sim.start()
    try:
        for q in QUEUES:
            sim.add_queue(q, timeout=5)
        sim.add_operator(SimOperator("PJSIP/1001", answer_after_s=1, talk_time_s=4))
        sim.add_member("wallet-ru", "PJSIP/1001", name="Dilnoza")
        sim.add_customer(SimCustomer(NUMBERS[0], answer="on_cue"))  # rings until picked up
        for number in NUMBERS[1:]:
            sim.add_customer(SimCustomer(number, answer_after_s=1))
        await seed(db)
        cfg = write_config(tmp_path, ami_port=sim.ami_port, db_path=tmp_path / "unused.db",
                           overrides={**OVERRIDES, "database": {"url": db}})  # fmt: skip
        # the third one through the CLI, as a scheduled outbound call due now
        argv = ["outbound", "schedule", "--config", str(cfg), "--number", NUMBERS[2],
                "--target", "wallet-ru", "--at", "now"]  # fmt: skip
        saved = structlog.get_config()  # the CLI configures logging for its process
        try:
            assert await asyncio.to_thread(cli_main, argv) == 0
        finally:
            structlog.configure(**saved)
        async with Daemon.start(cfg) as first:
            await wait_until(lambda: len(sim.originated) == 1, 10, "first callback dialing")
            await wait_until(lambda: rows(db, "callback_attempts") != [], 5, "attempt stored")
            first.kill()
            assert await first.proc.wait() == -9
        (attempt,) = rows(db, "callback_attempts")
        assert attempt["state"] == "dialing"
        assert [r["state"] for r in rows(db, "callback_requests")] == [
            "dialing", "pending", "pending"]  # fmt: skip
        async with Daemon.start(cfg) as second:
            await second.wait_log("callback_attempt_adopted")
            assert sim.pick_up(NUMBERS[0])  # the same call, still ringing: now it answers

            def states() -> list[str]:
                return [r["state"] for r in rows(db, "callback_requests")]

            await wait_until(lambda: states() == ["done"] * 3, 20, "all three connected")
    finally:
        await sim.close()
    dialled = [(o.action_id, o.channel_id, o.channel) for o in sim.originated]
    assert len(dialled) == 3 and len({d[1] for d in dialled}) == 3  # none twice
    assert [d[2] for d in dialled] == [f"PJSIP/{n}@trunk" for n in NUMBERS]
    requests = rows(db, "callback_requests")
    assert [r["attempts"] for r in requests] == [1, 1, 1]
    assert [r["kind"] for r in requests] == ["callback", "callback", "outbound"]
    assert [a["state"] for a in rows(db, "callback_attempts")] == ["connected"] * 3
    legs = [c for c in rows(db, "cards") if c["kind"] in ("callback", "outbound")]
    assert sorted(c["caller_num"] for c in legs) == list(NUMBERS)
    assert {c["uniqueid"] for c in legs} == {d[1] for d in dialled}
    legs.sort(key=lambda c: c["caller_num"])
    assert [(c["kind"], c["callback_of"], c["outcome"], c["operator"]) for c in legs] == [
        ("callback", "card-0", "answered", "Dilnoza"),
        ("callback", "card-1", "answered", "Dilnoza"),
        ("outbound", None, "answered", "Dilnoza")]  # fmt: skip


def test_parse_at() -> None:
    assert abs(parse_at("now") - time.time()) < 5
    assert parse_at("2026-05-04T10:00+00:00") == 1777888800.0

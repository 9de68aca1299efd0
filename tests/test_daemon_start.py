"""`ccrouter run` as a real process: a start-up failure exits non-zero at once with the reason in
its log and leaves the PBX untouched; SIGTERM stops it at any point of start-up and while running.

Each test runs `python -m ccrouter run` (bench/proc.py) against the PBX simulator in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.proc import Daemon, free_port, write_config
from ccrouter.app import App, StartupError
from ccrouter.demo import demo_settings
from ccrouter.sim import PbxSimulator
from tests.stack import example_settings

QUEUES = ("wallet-ru", "wallet-uz", "wallet-tg", "terminal-ru", "terminal-uz", "general-line")
EXIT_WAIT_S = 10.0
"""A generous bound on how long an exit may take (the daemon should need well under 2 s)."""


@contextlib.contextmanager
def held_port() -> Iterator[int]:
    """A port another process is listening on, as when something else already runs there."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


async def pbx() -> PbxSimulator:
    sim = PbxSimulator(agi_port=0, secret="demo-secret", time_scale=20.0)
    await sim.start()
    for q in QUEUES:
        sim.add_queue(q, timeout=5)
    return sim


async def exit_code(daemon: Daemon) -> int:
    """The daemon's exit code, waiting at most EXIT_WAIT_S."""
    try:
        return await asyncio.wait_for(daemon.proc.wait(), EXIT_WAIT_S)
    except TimeoutError:
        raise AssertionError(f"ccrouter still running; last logs: {daemon.logs[-5:]}") from None


def untouched(sim: PbxSimulator) -> None:
    """The daemon never connected to AMI, so it added no member and removed none."""
    with pytest.raises(IndexError, match="0 accepted so far"):
        sim.sent_bytes(0)
    assert all(sim.members(q) == [] for q in QUEUES)


async def test_taken_fastagi_port_exits_1_with_the_reason_and_never_touches_the_pbx(
    tmp_path: Path,
) -> None:
    sim = await pbx()
    try:
        with held_port() as port:
            cfg = write_config(tmp_path, ami_port=sim.ami_port, db_path=tmp_path / "cards.db",
                               agi_port=port)  # fmt: skip
            async with Daemon.start(cfg) as daemon:
                assert await exit_code(daemon) == 1
        (failed,) = daemon.events("ccrouter_start_failed")
        assert failed["error"] == f"address already in use: 127.0.0.1:{port}"
        assert failed["level"] == "error"
        assert not daemon.events("ccrouter_started")
        untouched(sim)
    finally:
        await sim.close()


async def test_taken_http_port_exits_1_with_the_reason_and_never_touches_the_pbx(
    tmp_path: Path,
) -> None:
    sim = await pbx()
    try:
        with held_port() as port:
            cfg = write_config(tmp_path, ami_port=sim.ami_port, db_path=tmp_path / "cards.db",
                               overrides={"http": {"port": port}})  # fmt: skip
            async with Daemon.start(cfg) as daemon:
                assert await exit_code(daemon) == 1
        (failed,) = daemon.events("ccrouter_start_failed")
        assert failed["error"] == f"address already in use: 127.0.0.1:{port}"
        assert not daemon.events("agi_listening"), "FastAGI bound although start-up had failed"
        untouched(sim)
    finally:
        await sim.close()


async def test_unusable_database_exits_1_naming_it_and_never_touches_the_pbx(
    tmp_path: Path,
) -> None:
    sim = await pbx()
    db = tmp_path / "cards.db"
    db.mkdir()  # a directory where the database file should be: SQLite cannot open it
    try:
        cfg = write_config(tmp_path, ami_port=sim.ami_port, db_path=db)
        async with Daemon.start(cfg) as daemon:
            assert await exit_code(daemon) == 1
        (failed,) = daemon.events("ccrouter_start_failed")
        url = f"sqlite+aiosqlite:///{db.resolve()}"
        assert failed["error"] == f"database {url}: unable to open database file"
        untouched(sim)
    finally:
        await sim.close()


@contextlib.contextmanager
def ami_port(kind: str) -> Iterator[int]:
    """An AMI port that never answers a Login (a listener that sends nothing: "hanging") or
    that refuses connections (nobody listens: "refusing")."""
    with held_port() as port:
        if kind == "hanging":
            yield port
            return
    yield port


@pytest.mark.parametrize("ami", ["hanging", "refusing"])
async def test_sigterm_while_ami_cannot_log_in_stops_with_0(tmp_path: Path, ami: str) -> None:
    """Started, but AMI never logs in: SIGTERM stops the daemon long before its AMI timeouts
    (a minute) would end what it waits for."""
    slow = {"connect_timeout_s": 60.0, "reconnect_min_s": 60.0, "reconnect_max_s": 60.0}
    with ami_port(ami) as port:
        cfg = write_config(tmp_path, ami_port=port, db_path=tmp_path / "cards.db",
                           overrides={"ami": slow})  # fmt: skip
        async with Daemon.start(cfg) as daemon:
            await daemon.wait_log("ccrouter_started")
            if ami == "refusing":
                await daemon.wait_log("ami_reconnect_in")
            daemon.proc.send_signal(signal.SIGTERM)
            assert await exit_code(daemon) == 0
    assert not daemon.events("ami_connected")
    # hanging: still waiting for the Login reply; refusing: waiting to reconnect
    assert bool(daemon.events("ami_disconnected")) == (ami == "refusing")
    assert daemon.events("ccrouter_stopped")


@contextlib.contextmanager
def locked_database(path: Path) -> Iterator[None]:
    """Another process holds an exclusive lock on the database: ccrouter's migrations wait
    for it (SQLite's busy timeout, 5 s) before they fail with "database is locked"."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("CREATE TABLE other_process (x)")
        conn.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        conn.close()


async def test_sigterm_while_migrations_wait_for_the_database_stops_with_0(
    tmp_path: Path,
) -> None:
    db = tmp_path / "cards.db"
    sim = await pbx()
    try:
        with locked_database(db):
            cfg = write_config(tmp_path, ami_port=sim.ami_port, db_path=db)
            async with Daemon.start(cfg) as daemon:
                await daemon.wait_log("ccrouter_starting")
                await asyncio.sleep(0.5)  # into the migrations' wait for the lock
                daemon.proc.send_signal(signal.SIGTERM)
                assert await exit_code(daemon) == 0
                code_while_locked = daemon.proc.returncode
        assert code_while_locked == 0, "ccrouter waited for the lock instead of stopping"
        assert not daemon.events("ccrouter_start_failed"), "the lock timed out before SIGTERM won"
        assert not daemon.events("ccrouter_started")
        assert daemon.events("ccrouter_stopped")
        untouched(sim)
    finally:
        await sim.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
async def test_signal_while_running_stops_with_0_and_leaves_the_members(
    tmp_path: Path, sig: signal.Signals
) -> None:
    sim = await pbx()
    try:
        cfg = write_config(tmp_path, ami_port=sim.ami_port, db_path=tmp_path / "cards.db")
        async with Daemon.start(cfg) as daemon:
            await daemon.wait_log("ami_resynced")
            await daemon.wait_log("membership_action")
            await asyncio.sleep(0.5)  # the membership sync done
            members = {q: sim.members(q) for q in QUEUES}
            daemon.proc.send_signal(sig)
            assert await exit_code(daemon) == 0
        assert daemon.events("ccrouter_stopped")
        assert not daemon.events("exit_without_waiting")
        assert any(members.values()), "the daemon added no member before the signal"
        assert {q: sim.members(q) for q in QUEUES} == members, "stopping changed the members"
    finally:
        await sim.close()


async def test_stop_undoes_a_failed_start_and_recancels_a_task_that_swallowed_a_cancel(
    tmp_path: Path,
) -> None:
    """In-process: a feature fails after spawning a task that swallows its first cancel (as
    `asyncio.wait_for` on 3.11 can); `stop()` still ends it, and no AMI task was started."""
    swallowed: list[str] = []

    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            swallowed.append("first cancel")
        await asyncio.sleep(3600)

    async def failing(app: App) -> None:
        app.spawn("stubborn", stubborn())
        await asyncio.sleep(0)  # it runs up to its first sleep
        raise StartupError("the feature refused")

    base = example_settings()
    settings = demo_settings(base, free_port(), f"sqlite+aiosqlite:///{tmp_path / 'cards.db'}")
    assert await asyncio.wait_for(App(settings).stop(), 5) is None  # never started: nothing to do
    app = App(settings, features=[failing])
    with pytest.raises(StartupError, match="the feature refused"):
        await app.start()
    await asyncio.wait_for(app.stop(), 5)
    assert swallowed == ["first cancel"]
    assert {t.get_name(): t.done() for t in app._tasks} == {
        "card_writer": True, "tracker_sweeper": True, "stubborn": True,
    }  # fmt: skip

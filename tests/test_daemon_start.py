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

from bench.proc import Daemon, write_config
from ccrouter.sim import PbxSimulator

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

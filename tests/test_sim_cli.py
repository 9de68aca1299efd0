"""`ccrouter sim --config FILE` and `ccrouter run --config FILE` as two processes, as a newcomer
tries them in two terminals: the simulator serves AMI on the config's port and dials ccrouter's
FastAGI port; a call is routed and its card written. And `ccrouter run` with an empty AMI secret
says so at start (issue 16, item 5)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from bench.proc import ROOT, Daemon, free_port, write_config
from ccrouter.sim import PbxSimulator
from tests.test_daemon_start import exit_code

SIM = ("ccrouter", "sim")


def card_row(db: Path, number: str) -> tuple[str, str | None] | None:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT number, queue FROM cards WHERE number = ?",
                           (number,)).fetchone()  # fmt: skip
    finally:
        conn.close()
    return None if row is None else (str(row[0]), row[1])


async def test_sim_and_run_in_two_processes_route_a_call_and_write_its_card(
    tmp_path: Path,
) -> None:
    db = tmp_path / "cards.db"
    cfg = write_config(tmp_path, ami_port=free_port(), db_path=db)
    async with Daemon.start(cfg, module=SIM, args=("--rate", "5", "--time-scale", "20")) as sim:
        ready = await sim.wait_log("sim_ready")
        await sim.wait_log("sim_waiting_for_ccrouter")
        assert ready["agi"] == f"127.0.0.1:{sim.agi_port}"
        await asyncio.sleep(0.5)
        assert not sim.events("sim_call_ended"), "calls placed before ccrouter logged in"
        async with Daemon.start(cfg) as run:
            await run.wait_log("ami_connected")
            assert not run.events("ami_secret_empty")
            routed = None
            for n in range(1, 200):
                ended = await sim.wait_log("sim_call_ended", timeout=30, count=n)
                if ended["queue"] and ended["card"]:
                    routed = ended
                    break
            assert routed is not None, sim.events("sim_call_ended")
            await run.wait_log("call_ended")
            await asyncio.sleep(0.3)  # the writer's commit window
            row = card_row(db, routed["card"])
            assert row is not None, f"card {routed['card']} not in the database"
            assert row[1] == routed["queue"]
        sim.proc.send_signal(signal.SIGTERM)
        assert await exit_code(sim) == 0
        (stopped,) = sim.events("sim_stopped")
        assert stopped["calls"] >= 1


async def test_sim_with_a_taken_ami_port_exits_1_naming_the_key(tmp_path: Path) -> None:
    taken = PbxSimulator(agi_port=free_port())
    await taken.start(host="127.0.0.1", port=0)
    try:
        cfg = write_config(tmp_path, ami_port=taken.ami_port, db_path=tmp_path / "cards.db")
        async with Daemon.start(cfg, module=SIM) as sim:
            assert await exit_code(sim) == 1
        (failed,) = sim.events("sim_start_failed")
        assert failed["error"].startswith(f"ami.port: cannot listen on 127.0.0.1:{taken.ami_port}")
    finally:
        await taken.close()


async def test_sim_without_a_fixed_agi_port_exits_1_naming_the_key(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, ami_port=free_port(), db_path=tmp_path / "cards.db",
                       overrides={"agi": {"port": 0}})  # fmt: skip
    async with Daemon.start(cfg, module=SIM) as sim:
        assert await exit_code(sim) == 1
    (failed,) = sim.events("sim_start_failed")
    assert failed["error"] == "agi.port is 0 (any free port): the dialplan needs a fixed port"


async def test_sim_with_an_invalid_config_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("ami:\n  port: seventy\n", encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ccrouter", "sim", "--config", str(cfg), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert f"{cfg}:2: ami.port" in err.decode()


@pytest.mark.parametrize("secret", ["", "demo-secret"], ids=["empty", "set"])
async def test_run_warns_once_at_start_when_the_ami_secret_is_empty(
    tmp_path: Path, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CCROUTER_AMI_SECRET", raising=False)
    assert "CCROUTER_AMI_SECRET" not in os.environ
    sim = PbxSimulator(agi_port=0, secret=secret)
    await sim.start()
    try:
        cfg = write_config(tmp_path, ami_port=sim.ami_port, db_path=tmp_path / "cards.db",
                           overrides={"ami": {"secret": secret}})  # fmt: skip
        async with Daemon.start(cfg) as run:
            await run.wait_log("ccrouter_started")
            warnings = run.events("ami_secret_empty")
        if secret:
            assert warnings == []
        else:
            (warning,) = warnings
            assert warning["level"] == "warning" and warning["user"] == "ccrouter"
            assert "CCROUTER_AMI_SECRET" in warning["fix"]
    finally:
        await sim.close()

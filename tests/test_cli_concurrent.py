"""Ten `ccrouter operator` commands at once, as real processes, next to a running daemon whose
card writer is busy with traffic: none fails on a locked database, and every effect is in the
database and applied to the PBX (issue 11, item 5)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from ccrouter.sim import SimCaller
from tests.conftest import ROOT
from tests.routing_stack import routing_stack
from tests.stack import wait_until
from tests.test_operator_cli import config_for

WALLET = "712000100"

# Commands on the same operator touch different fields, so the end state does not depend on
# the order they commit in (a read-modify-write outside one transaction would lose some).
COMMANDS: list[tuple[str, ...]] = [
    ("login", "op1001"), ("login", "op1002"), ("login", "op1003"), ("login", "op1004"),
    ("login", "op1005"), ("pause", "op1001", "--reason", "lunch"),
    ("pause", "op1004", "--reason", "coffee"), ("skills", "op1002", "uz=70"),
    ("skills", "op1005", "wallet=90"), ("unpause", "op1003"),
]  # fmt: skip


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
        caller = (lambda i: SimCaller(f"7901{i:07d}", dialled=WALLET, patience_s=30))
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

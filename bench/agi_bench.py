"""FastAGI round trips: ccrouter's `route` script (with its card write) vs a bare panoramisk 1.4
`Application` handler and a minimal asyncio stream server sending the same commands.

Each server runs in this process (uvloop); the Asterisk-like client (`bench.agi_client`) runs
in a subprocess. The three servers are measured back to back at each concurrency, so their
ratios hold on a noisy machine.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from bench.proc import ROOT

N_COMMANDS_DEFAULT = 6


async def run_client(port: int, concurrency: int, seconds: float) -> dict[str, Any]:
    """The client's figures, plus `cpu_us_per_session`: this process's CPU time (the server
    under test, every thread of it — the card writer's SQLite thread included) per session."""
    cpu0 = time.process_time()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.agi_client", str(port), str(concurrency), str(seconds),
        stdout=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    cpu = time.process_time() - cpu0
    result = dict(json.loads(out))
    sessions = result.get("sessions") or 0
    result["cpu_us_per_session"] = round(cpu / sessions * 1e6, 1) if sessions else None
    return result


@asynccontextmanager
async def local_server(handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]
                   ) -> AsyncIterator[int]:  # fmt: skip
    """A stream server on a free local port (the baselines here; test peers); its port."""
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@asynccontextmanager
async def raw_server(n_commands: int) -> AsyncIterator[int]:
    cmds = [f"SET VARIABLE CCROUTER_V{i} value{i}\n".encode() for i in range(n_commands)]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\n\n")
            for cmd in cmds:
                writer.write(cmd)
                await reader.readline()
        finally:
            writer.close()

    async with local_server(handle) as port:
        yield port


@asynccontextmanager
async def panoramisk_server(n_commands: int) -> AsyncIterator[int]:
    from panoramisk.fast_agi import Application

    logging.getLogger("panoramisk").setLevel(logging.WARNING)
    app = Application()

    async def route(request: Any) -> None:
        for i in range(n_commands):
            await request.send_command(f"SET VARIABLE CCROUTER_V{i} value{i}")

    app.add_route("route", route)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await app.handler(reader, writer)
        finally:
            writer.close()  # panoramisk leaves the socket open; Asterisk waits for the close

    async with local_server(handle) as port:
        yield port


@asynccontextmanager
async def ccrouter_server() -> AsyncIterator[int]:
    """The real App (route script, tracker, card writer on a fresh SQLite file), no AMI peer."""
    from ccrouter.app import App, settle_heap
    from ccrouter.config import load_settings
    from ccrouter.logs import configure_logging

    s = load_settings(ROOT / "config" / "ccrouter.yaml", environ={})
    configure_logging(s.log.model_copy(update={"level": "error", "format": "json"}))
    with tempfile.TemporaryDirectory(prefix="ccrouter-bench-") as d:
        s = s.model_copy(update={
            "agi": s.agi.model_copy(update={"port": 0}),
            "ami": s.ami.model_copy(update={"port": 9, "reconnect_min_s": 5.0}),
            "database": s.database.model_copy(update={"url": f"sqlite+aiosqlite:///{d}/c.db"}),
        })  # fmt: skip
        app = App(s, features=[])
        await app.start()
        settle_heap()  # as the daemon does once started
        try:
            yield app.agi_address[1]
        finally:
            await app.stop()


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


async def measure(levels: tuple[int, ...] = (1, 10, 100), seconds: float = 2.0,
                  rounds: int = 2) -> dict[str, Any]:  # fmt: skip
    """Per level, the three servers in interleaved rounds; each keeps its best round (highest
    sessions/s, and separately lowest CPU per session): the noise floor of a shared machine.

    Two ratios per level: time per session from throughput (the client shares the machine, so
    it also measures the client), and the server's CPU per session (what ccrouter adds to each
    call; robust to other load). Targets: <= 1.0 vs panoramisk, <= 1.5 vs raw."""
    results: dict[str, Any] = {}
    async with ccrouter_server() as port:  # the route script's own command count
        probe = await run_client(port, 1, 0.2)
    n = int(probe["commands_per_session"]) or N_COMMANDS_DEFAULT
    servers: dict[str, Callable[[], Any]] = {
        "raw": lambda: raw_server(n),
        "panoramisk": lambda: panoramisk_server(n),
        "ccrouter": ccrouter_server,
    }
    for c in levels:
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
        for _ in range(rounds):
            for name, make in servers.items():
                async with make() as port:
                    runs[name].append(await run_client(port, c, seconds))
        row: dict[str, Any] = {}
        for name, got in runs.items():
            row[name] = max(got, key=lambda r: r["sessions_per_s"])
            row[name]["cpu_us_per_session"] = min(
                (r["cpu_us_per_session"] for r in got if r["cpu_us_per_session"]), default=None)
        cc, pa, raw = (row[k]["sessions_per_s"] for k in ("ccrouter", "panoramisk", "raw"))
        row["ratio_time_ccrouter_vs_panoramisk"] = _ratio(pa, cc)
        row["ratio_time_ccrouter_vs_raw"] = _ratio(raw, cc)
        cpu = {k: row[k]["cpu_us_per_session"] for k in ("ccrouter", "panoramisk", "raw")}
        row["ratio_cpu_ccrouter_vs_panoramisk"] = _ratio(cpu["ccrouter"], cpu["panoramisk"])
        row["ratio_cpu_ccrouter_vs_raw"] = _ratio(cpu["ccrouter"], cpu["raw"])
        results[f"c{c}"] = row
    return {"commands_per_session": n, "rounds": rounds, "levels": results}


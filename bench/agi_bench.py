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
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from bench.proc import ROOT

N_COMMANDS_DEFAULT = 6


async def run_client(port: int, concurrency: int, seconds: float) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.agi_client", str(port), str(concurrency), str(seconds),
        stdout=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    return dict(json.loads(out))


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

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


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

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@asynccontextmanager
async def ccrouter_server() -> AsyncIterator[int]:
    """The real App (route script, tracker, card writer on a fresh SQLite file), no AMI peer."""
    from ccrouter.app import App
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
        try:
            yield app.agi_address[1]
        finally:
            await app.stop()


async def measure(levels: tuple[int, ...] = (1, 10, 100), seconds: float = 2.0) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with ccrouter_server() as port:  # the route script's own command count
        probe = await run_client(port, 1, 0.2)
    n = int(probe["commands_per_session"]) or N_COMMANDS_DEFAULT
    for c in levels:
        row: dict[str, Any] = {}
        servers: dict[str, Callable[[], Any]] = {
            "raw": lambda: raw_server(n),
            "panoramisk": lambda: panoramisk_server(n),
            "ccrouter": ccrouter_server,
        }
        for name, make in servers.items():
            async with make() as port:
                row[name] = await run_client(port, c, seconds)
        cc, pa, raw = (row[k]["sessions_per_s"] for k in ("ccrouter", "panoramisk", "raw"))
        row["ratio_time_ccrouter_vs_panoramisk"] = round(pa / cc, 3) if cc else None
        row["ratio_time_ccrouter_vs_raw"] = round(raw / cc, 3) if cc else None
        results[f"c{c}"] = row
    return {"commands_per_session": n, "levels": results}


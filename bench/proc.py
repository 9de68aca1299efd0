"""ccrouter as a real subprocess, pointed at a PBX simulator running in this process.

    cfg = write_config(tmp, ami_port=sim.ami_port, db_path=tmp / "cards.db")
    async with Daemon.start(cfg) as d:      # `python -m ccrouter run --config cfg`
        sim.agi_port = d.agi_port
        await d.wait_log("ami_connected")
        ...
        d.kill()                            # SIGKILL, like a crash

The config is the worked example (`config/ccrouter.yaml`) with the AMI pointed at the simulator,
a free FastAGI port, the given database, JSON logs, fast reconnects, and any overrides.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config" / "ccrouter.yaml"
SIM_SECRET = "demo-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def write_config(
    directory: Path,
    *,
    ami_port: int,
    db_path: Path,
    agi_port: int | None = None,
    log_level: str = "info",
    overrides: Mapping[str, Any] | None = None,
) -> Path:
    """A config file for a daemon talking to the simulator; returns its path."""
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data = _merge(data, {
        "ami": {"host": "127.0.0.1", "port": ami_port, "secret": SIM_SECRET,
                "reconnect_min_s": 0.05, "reconnect_max_s": 0.3, "ping_interval_s": 0.5,
                "ping_timeout_s": 0.5, "action_timeout_s": 2.0},
        "agi": {"host": "127.0.0.1", "port": agi_port or free_port()},
        "http": {"host": "127.0.0.1", "port": free_port()},
        "database": {"url": f"sqlite+aiosqlite:///{db_path.resolve()}"},
        "log": {"format": "json", "level": log_level, "mask_numbers": False},
        "calls": {"close_grace_s": 2.0},
    })  # fmt: skip
    if overrides:
        data = _merge(data, overrides)
    path = directory / "ccrouter-test.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


class Daemon:
    """One ccrouter process; its JSON log lines (stderr) are collected in `logs`."""

    def __init__(self, proc: asyncio.subprocess.Process, agi_port: int) -> None:
        self.proc = proc
        self.agi_port = agi_port
        self.logs: list[dict[str, Any]] = []
        self.stdout: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._changed = asyncio.Event()
        self._readers = [
            asyncio.create_task(self._read(proc.stderr, self._on_log)),
            asyncio.create_task(self._read(proc.stdout, self.stdout.put_nowait)),
        ]

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        config: Path,
        *,
        module: Sequence[str] = ("ccrouter", "run"),
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> AsyncIterator[Daemon]:
        """Run `python -m <module> --config <config> <args>`; stopped (SIGTERM, then SIGKILL)
        when the block ends."""
        agi_port = int(yaml.safe_load(config.read_bytes())["agi"]["port"])  # noqa: ASYNC240 - a tiny file
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", *module, "--config", str(config), *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            limit=1 << 20,
        )  # fmt: skip
        daemon = cls(proc, agi_port)
        try:
            yield daemon
        finally:
            await daemon.stop()

    async def _read(self, stream: asyncio.StreamReader | None, sink: Any) -> None:
        assert stream is not None
        while line := await stream.readline():
            try:
                record = json.loads(line)
            except ValueError:
                record = {"event": "unparsed_output", "line": line.decode("utf-8", "replace")}
            if not isinstance(record, dict):
                record = {"event": "unparsed_output", "line": repr(record)}
            sink(record)

    def _on_log(self, record: dict[str, Any]) -> None:
        self.logs.append(record)
        self._changed.set()

    def events(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.logs if r.get("event") == name]

    async def wait_log(self, name: str, timeout: float = 15.0, count: int = 1) -> dict[str, Any]:
        """The `count`-th log record with event `name` (waits for it)."""
        async with asyncio.timeout(timeout):
            while True:
                found = self.events(name)
                if len(found) >= count:
                    return found[count - 1]
                if self.proc.returncode is not None:
                    raise RuntimeError(
                        f"ccrouter exited ({self.proc.returncode}) before {name!r};"
                        f" last logs: {self.logs[-5:]}"
                    )
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.1):
                        await self._changed.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, like a crash or the OOM killer."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)

    async def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM (a clean stop), SIGKILL after `timeout`; the exit code."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(timeout):
                code = await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            code = await self.proc.wait()
        for task in self._readers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return code

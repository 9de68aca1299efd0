"""Test helpers for driving the simulator over real sockets: a raw AMI client and a scripted
FastAGI server (the minimal `route` script: CCROUTER_STATUS=ok, CCROUTER_QUEUE=<queue>)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

AgiScript = Callable[[asyncio.StreamReader, asyncio.StreamWriter, dict[str, str]], Awaitable[None]]


def parse(block: bytes) -> dict[str, str]:
    """One AMI message -> {header: first value}."""
    out: dict[str, str] = {}
    for line in block.decode().split("\r\n"):
        key, sep, value = line.partition(": ")
        if sep and key not in out:
            out[key] = value
    return out


class AmiClient:
    """A deliberately plain AMI client: it keeps every message it reads."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.banner = b""
        self.seen: list[dict[str, str]] = []

    @classmethod
    async def connect(cls, port: int, host: str = "127.0.0.1") -> AmiClient:
        reader, writer = await asyncio.open_connection(host, port)
        client = cls(reader, writer)
        client.banner = await asyncio.wait_for(reader.readline(), 5)
        return client

    async def send(self, action: str, **headers: str) -> None:
        lines = [f"Action: {action}"] + [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self.writer.drain()

    async def read(self, timeout: float = 5.0) -> bytes:
        block = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
        self.seen.append(parse(block))
        return block

    async def response(self, timeout: float = 5.0) -> dict[str, str]:
        """The next action response, skipping events."""
        while True:
            msg = parse(await self.read(timeout))
            if "Response" in msg:
                return msg

    async def until(self, event: str, timeout: float = 5.0, **match: str) -> list[dict[str, str]]:
        """Messages read up to and including `event` (whose headers equal `match`)."""
        out = []
        while True:
            msg = parse(await self.read(timeout))
            out.append(msg)
            if msg.get("Event") == event and all(msg.get(k) == v for k, v in match.items()):
                return out

    async def login(self, events: str = "on", secret: str = "lab-secret") -> dict[str, str]:
        await self.send("Login", Username="ccrouter", Secret=secret, Events=events)
        return await self.response()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


def route_to(queue: str, extra: tuple[tuple[str, str], ...] = ()) -> AgiScript:
    """A `route` script that sends the call to `queue` (plus extra variables)."""

    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter, env: dict[str, str]) -> None:
        for name, value in (("CCROUTER_STATUS", "ok"), ("CCROUTER_QUEUE", queue), *extra):
            w.write(f"SET VARIABLE {name} {value}\n".encode())
            await r.readline()

    return script


class ScriptedAgi:
    """A FastAGI server that reads the environment, runs `script`, then closes the socket."""

    def __init__(self, script: AgiScript) -> None:
        self.script = script
        self.envs: list[dict[str, str]] = []
        self.raw_envs: list[bytes] = []
        self._after_close: asyncio.Queue[bytes] = asyncio.Queue()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        raw = await r.readuntil(b"\n\n")
        self.raw_envs.append(raw)
        env = {}
        for line in raw.decode().splitlines():
            key, _, value = line.partition(": ")
            if key:
                env[key] = value
        self.envs.append(env)
        try:
            await self.script(r, w, env)
            if w.can_write_eof():
                w.write_eof()
            self._after_close.put_nowait(await asyncio.wait_for(r.read(), 5))
        finally:
            w.close()

    async def closed(self, timeout: float = 5.0) -> bytes:
        """What the peer sent after this server half-closed its side (next finished session)."""
        return await asyncio.wait_for(self._after_close.get(), timeout)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

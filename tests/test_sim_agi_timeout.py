"""The simulator's FastAGI session waits `timeout` for each command, like res_agi: a peer that
keeps sending commands, each well within it, is served however long the session lasts; one
that goes silent ends the session with FAILURE, as does a refused connection; a session
cancelled from outside stays cancelled (a timeout never swallows it)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from ccrouter.sim.agi import AgiSession, Keypad


class _Chan:
    def __init__(self) -> None:
        self.dead = asyncio.Event()
        self.keypad = Keypad(())
        self.commands: list[str] = []

    def agi_env(self) -> list[tuple[str, str]]:
        return [("agi_channel", "PJSIP/trunk-00000001")]

    def agi_command(self, command: str, code: int) -> None:
        self.commands.append(command)


Peer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def _server(peer: Peer) -> AsyncIterator[int]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()).strip():  # the environment, to its blank line
            pass
        try:
            await peer(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_commands_each_within_the_timeout_keep_the_session_going() -> None:
    replies: list[bytes] = []

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(6):  # 6 x 0.4 s: longer than one timeout in all
            await asyncio.sleep(0.4)
            writer.write(b"NOOP\n")
            replies.append(await reader.readline())

    chan = _Chan()
    async with _server(peer) as port:
        status = await AgiSession(chan, 0.0, 2.0).run("127.0.0.1", port, "route", [])  # type: ignore[arg-type]
    assert status == "SUCCESS"
    assert replies == [b"200 result=0\n"] * 6
    assert chan.commands == ["NOOP"] * 6


async def test_a_silent_peer_ends_the_session_with_failure() -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"NOOP\n")
        await reader.readline()
        await asyncio.sleep(30)  # then nothing

    chan = _Chan()
    async with _server(peer) as port:
        status = await AgiSession(chan, 0.0, 0.3).run("127.0.0.1", port, "route", [])  # type: ignore[arg-type]
    assert status == "FAILURE"
    assert chan.commands == ["NOOP"]


async def test_a_session_cancelled_from_outside_stays_cancelled() -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"NOOP\n")
        await reader.readline()
        await asyncio.sleep(30)

    chan = _Chan()
    async with _server(peer) as port:
        task = asyncio.create_task(AgiSession(chan, 0.0, 30.0).run("127.0.0.1", port, "r", []))  # type: ignore[arg-type]
        while not chan.commands:  # the session is reading
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_refused_connection_is_failure() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    status = await AgiSession(_Chan(), 0.0, 5.0).run("127.0.0.1", port, "route", [])  # type: ignore[arg-type]
    assert status == "FAILURE"

"""A big AMI read is handled a slice at a time, the event loop getting turns in between (the
FastAGI sessions must not wait behind a thousand events), in order and without loss."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from bench.agi_bench import local_server
from ccrouter.pbx.ami.protocol import MESSAGES_PER_TURN, FastAMIProtocol
from ccrouter.pbx.ami.replay import messages
from tests.conftest import fixture_bytes

RECORDED = fixture_bytes("ami-queue-answered.txt")  # banner, replies and 163 events
STREAM = RECORDED + RECORDED.split(b"\r\n", 1)[1]  # the events twice, one banner


class _Manager:
    """What panoramisk's Manager is to the protocol: told when the connection is lost."""

    def __init__(self, seen: list[dict[str, Any]]) -> None:
        self.seen, self.lost_after = seen, -1

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost_after = len(self.seen)


@asynccontextmanager
async def peer(data: bytes) -> AsyncIterator[int]:
    """A local AMI peer that writes `data` in one go as soon as it is connected."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await reader.read()  # until the client closes
        writer.close()

    async with local_server(handle) as port:
        yield port


async def connect(port: int, seen: list[dict[str, Any]],
                  on_event: Any = None) -> tuple[FastAMIProtocol, _Manager]:  # fmt: skip
    manager = _Manager(seen)

    class Wired(FastAMIProtocol):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self.factory = manager  # as panoramisk's Manager does

    def sink(msg: dict[str, Any]) -> None:
        seen.append(msg)
        if on_event is not None:
            on_event(len(seen))

    def make() -> FastAMIProtocol:
        proto = Wired()
        proto.sink = sink
        return proto

    _, proto = await asyncio.get_running_loop().create_connection(make, "127.0.0.1", port)
    return proto, manager


def expected_events() -> list[dict[str, Any]]:
    return [m for m in messages(STREAM) if "Event" in m]


async def test_the_loop_gets_a_turn_within_a_slice_of_a_big_read_and_order_is_kept() -> None:
    events = expected_events()
    assert len(events) > 3 * MESSAGES_PER_TURN
    seen: list[dict[str, Any]] = []
    turn_came_after: list[int] = []

    def on_event(n: int) -> None:
        if n == 1:  # someone else's callback, due at the loop's next turn
            asyncio.get_running_loop().call_soon(lambda: turn_came_after.append(len(seen)))

    async with peer(STREAM) as port:
        proto, _ = await connect(port, seen, on_event)
        async with asyncio.timeout(10):
            while len(seen) < len(events):
                await asyncio.sleep(0.01)
        proto.transport.close()
    assert seen == events
    # handled in one callback, all of them would come first (the peer wrote them at once)
    assert turn_came_after and turn_came_after[0] <= 2 * MESSAGES_PER_TURN


async def test_events_read_before_the_connection_drops_are_all_handled_first() -> None:
    events = expected_events()
    seen: list[dict[str, Any]] = []
    holder: list[FastAMIProtocol] = []

    def on_event(n: int) -> None:
        if n == 10:  # the connection breaks while most of the read still waits its turn
            holder[0].transport.abort()

    async with peer(STREAM) as port:
        proto, manager = await connect(port, seen, on_event)
        holder.append(proto)
        async with asyncio.timeout(10):
            while manager.lost_after < 0:
                await asyncio.sleep(0.01)
    assert len(seen) > MESSAGES_PER_TURN  # the rest of the read came after the abort
    assert seen == events[: len(seen)]
    assert manager.lost_after == len(seen)  # nothing handled after the loss was reported

"""The supervised AMI client against a scripted peer that speaks the recorded bytes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from ccrouter.config import AmiSettings
from ccrouter.dialplan import AMI_EVENTS
from ccrouter.pbx.ami.connection import AmiClient, AmiNotConnected, AmiTimeout, event_filter
from ccrouter.pbx.ami.replay import messages

BANNER = b"Asterisk Call Manager/11.0.0\r\n"


def block(**headers: str) -> bytes:
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items()) + b"\r\n"


async def read_action(reader: asyncio.StreamReader) -> dict[str, str]:
    raw = await reader.readuntil(b"\r\n\r\n")
    return next(messages(raw))


class ScriptedAmi:
    """A tiny AMI peer: login (ok or failed, like the transcripts), Filter, Ping, CoreStatus,
    CoreShowChannels; `mode` switches it to half-open (reads, never answers)."""

    def __init__(self, secret: str = "lab-secret") -> None:
        self.secret = secret
        self.half_open = False
        self.actions: list[dict[str, str]] = []
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        writer.write(BANNER)
        try:
            while True:
                action = await read_action(reader)
                self.actions.append(action)
                if self.half_open:
                    continue
                reply = self.reply(action)
                if reply is None:
                    writer.close()
                    return
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    def reply(self, a: dict[str, str]) -> bytes | None:
        aid = a.get("ActionID", "")
        name = a["Action"]
        if name == "Login":
            if a.get("Secret") != self.secret:
                return None if aid == "closed" else (
                    block(Response="Error", ActionID=aid, Message="Authentication failed")
                )
            return block(Response="Success", ActionID=aid, Message="Authentication accepted") + (
                block(Event="FullyBooted", Privilege="system,all", Uptime="3", LastReload="3",
                      Status="Fully Booted")
            )
        if name == "Filter":
            return block(Response="Success", ActionID=aid, Message="Filter Added")
        if name == "Ping":
            return block(Response="Success", ActionID=aid, Ping="Pong", Timestamp="1.0")
        if name == "CoreStatus":
            return block(Response="Success", ActionID=aid, CoreStartupDate="2026-11-23",
                         CoreStartupTime="14:23:37", CoreCurrentCalls="0")  # fmt: skip
        if name == "CoreShowChannels":
            return block(Response="Success", ActionID=aid, EventList="start",
                         Message="Channels will follow") + block(
                Event="CoreShowChannelsComplete", ActionID=aid, EventList="Complete",
                ListItems="0")  # fmt: skip
        return block(Response="Error", ActionID=aid, Message="Invalid/unknown command")


@contextlib.asynccontextmanager
async def peer(script: ScriptedAmi) -> AsyncIterator[int]:
    server = await asyncio.start_server(script.handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for w in script.writers:
            w.close()
        server.close()


def settings(port: int, **kw: Any) -> AmiSettings:
    base: dict[str, Any] = dict(port=port, secret="lab-secret", action_timeout_s=1.0,
                                ping_interval_s=0.2, ping_timeout_s=0.2,
                                reconnect_min_s=0.05, reconnect_max_s=0.2)  # fmt: skip
    base.update(kw)
    return AmiSettings(**base)


async def wait_for(cond: Callable[[], bool], timeout: float = 3.0) -> None:
    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


@contextlib.asynccontextmanager
async def running(client: AmiClient) -> AsyncIterator[None]:
    task = asyncio.create_task(client.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def noop_connected() -> Callable[[AmiClient], Awaitable[None]]:
    async def on_connected(_c: AmiClient) -> None:
        return None

    return on_connected


async def test_login_filter_and_resync_hook_then_events_flow() -> None:
    script = ScriptedAmi()
    events: list[dict[str, Any]] = []
    resyncs: list[int] = []

    async def on_connected(c: AmiClient) -> None:
        resyncs.append(c.connects)

    async with peer(script) as port:
        client = AmiClient(settings(port), on_event=events.append, on_connected=on_connected)
        async with running(client):
            await wait_for(lambda: bool(resyncs))
            assert client.connected and client.version == "11.0.0"
            login, flt = script.actions[0], script.actions[1]
            assert login["Action"] == "Login" and login["Events"] == "on"
            assert flt == {"Action": "Filter", "ActionID": flt["ActionID"],
                           "Operation": "Add", "Filter": event_filter(AMI_EVENTS)}  # fmt: skip
            reply = await client.send({"Action": "CoreStatus"})
            assert reply["CoreStartupTime"] == "14:23:37"
    assert [e["Event"] for e in events] == ["FullyBooted"]


def test_event_filter_admits_exactly_the_names() -> None:
    import re

    rx = re.compile(event_filter(["Hangup", "QueueCallerJoin"]))
    assert rx.search("Event: Hangup\r\nPrivilege: call,all\r\n")
    assert not rx.search("Event: HangupRequest\r\nPrivilege: call,all\r\n")
    assert rx.search("Event: QueueCallerJoin\r\n")
    assert not rx.search("Event: VarSet\r\n")


async def test_failed_login_is_reported_with_asterisks_reason_and_retried() -> None:
    script = ScriptedAmi(secret="other")
    async with peer(script) as port:
        client = AmiClient(settings(port), on_event=lambda m: None, on_connected=noop_connected())
        with capture_logs() as logs:
            async with running(client):
                await wait_for(lambda: script.connections >= 2)
    failures = [e for e in logs if e["event"] == "ami_login_failed"]
    assert failures and failures[0]["error"] == "Authentication failed"
    assert failures[0]["user"] == "ccrouter"
    assert not client.connected


async def test_half_open_connection_is_detected_by_the_watchdog_and_replaced() -> None:
    script = ScriptedAmi()
    async with peer(script) as port:
        client = AmiClient(settings(port), on_event=lambda m: None, on_connected=noop_connected())
        with capture_logs() as logs:
            async with running(client):
                await wait_for(lambda: client.connected)
                script.half_open = True  # the socket stays open, nothing answers
                await wait_for(lambda: not client.connected)
                script.half_open = False
                await wait_for(lambda: client.connected and script.connections >= 2)
    assert any("watchdog" in str(e.get("error")) for e in logs if e["event"] == "ami_disconnected")


async def test_action_timeout_and_not_connected_are_typed_errors() -> None:
    script = ScriptedAmi()
    async with peer(script) as port:
        client = AmiClient(settings(port, ping_interval_s=30), on_event=lambda m: None,
                           on_connected=noop_connected())  # fmt: skip
        with pytest.raises(AmiNotConnected):
            await client.send({"Action": "Ping"})
        async with running(client):
            await wait_for(lambda: client.connected)
            script.half_open = True
            with pytest.raises(AmiTimeout):
                await client.send({"Action": "Ping"}, timeout=0.1)


async def test_dropped_connection_reconnects_and_resyncs_again() -> None:
    script = ScriptedAmi()
    resyncs: list[int] = []

    async def on_connected(c: AmiClient) -> None:
        await c.send({"Action": "CoreShowChannels"}, as_list=True)
        resyncs.append(c.connects)

    async with peer(script) as port:
        client = AmiClient(settings(port, ping_interval_s=30), on_event=lambda m: None,
                           on_connected=on_connected)  # fmt: skip
        async with running(client):
            await wait_for(lambda: resyncs == [1])
            script.writers[-1].close()  # Asterisk closes the socket
            await wait_for(lambda: resyncs == [1, 2])


def test_reply_messages_answer_like_panoramisk_messages() -> None:
    """Every message of the recorded action replies, as ReplyMessage and as panoramisk's
    Message: the same keys and values, the same case-insensitive look-ups panoramisk's Action
    makes (`event`, `response`, `message`, `eventlist`, `actionid`), the same misses."""
    from panoramisk.message import Message

    from ccrouter.pbx.ami.protocol import ReplyMessage
    from tests.conftest import fixture_bytes

    replies = [m for m in messages(fixture_bytes("ami-actions.txt")) if "ActionID" in m]
    assert len(replies) > 20
    for headers in replies:
        ours, theirs = ReplyMessage(dict(headers)), Message(dict(headers))
        assert dict(ours) == dict(headers) and len(ours) == len(headers)
        for name in ("event", "response", "message", "eventlist", "actionid", "subevent",
                     "QUEUE", "nosuchheader", "success", "id"):  # fmt: skip
            assert getattr(ours, name) == getattr(theirs, name), (name, headers)
        assert ("EVENT" in ours) == ("EVENT" in theirs)
        if "Response" in headers:  # an existing key keeps Asterisk's spelling
            ours["response"] = "Changed"
            assert ours["Response"] == "Changed" and "response" not in dict(ours)

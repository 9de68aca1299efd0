"""AgiServer over real sockets: header limits, routing by script, failures -> CCROUTER_STATUS."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from ccrouter.config import AgiSettings
from ccrouter.pbx.agi import AgiHangup, AgiProtocolError, AgiServer, AgiSession
from ccrouter.pbx.agi.session import parse_env, parse_reply, read_reply
from tests.test_agi_session import WAIT, Peer, header_of, running

HEADER = header_of("agi-session.txt")  # script route, uniqueid 1795443851.11
ERROR = "SET VARIABLE CCROUTER_STATUS error"
OK = b"200 result=1\n"


def events(logs: Sequence[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    return [e for e in logs if e["event"] == name]


async def noop_script(session: AgiSession) -> None:
    await session.command("NOOP")


async def test_normal_session_closes_the_socket_and_counts() -> None:
    async with running({"route": noop_script}) as (server, port):
        peer = await Peer.connect(port, HEADER)
        assert await peer.read_command() == "NOOP"
        peer.send(b"200 result=0\n")
        assert await peer.expect_eof() == []
        stats = server.stats.as_dict()
    assert (stats["connections"], stats["sessions"], stats["ok"], stats["errors"]) == (1, 1, 1, 0)
    assert stats["active"] == 0 and stats["latency_max_s"] > 0


async def test_a_burst_of_connections_while_the_loop_is_busy_is_queued_not_dropped() -> None:
    """Asterisk connects at the call rate whatever ccrouter's loop is doing: 300 connections
    made while the loop runs something else (this test, without awaiting) are queued by the
    kernel (listen backlog 4096, not asyncio's 100: beyond it the SYN is dropped and the
    caller's connect() retries after 1 s), and every one is served once the loop is free."""
    async with running({"route": noop_script}) as (server, port):
        socks = []
        try:
            for _ in range(300):  # blocking connects: the loop cannot accept meanwhile
                sock = socket.socket()
                sock.settimeout(3.0)  # far beyond a queued connect; a dropped SYN hits it
                socks.append(sock)
                sock.connect(("127.0.0.1", port))
            peers = []
            for sock in socks:
                sock.setblocking(False)
                reader, writer = await asyncio.open_connection(sock=sock)
                peers.append(Peer(reader, writer))
                writer.write(HEADER)
            for peer in peers:
                assert await peer.read_command() == "NOOP"
                peer.send(b"200 result=0\n")
                assert await peer.expect_eof() == []
        finally:
            for sock in socks:
                sock.close()
        assert (server.stats.connections, server.stats.ok) == (300, 300)


async def test_early_eof_in_the_header() -> None:
    with capture_logs() as logs:
        async with running({"route": noop_script}) as (server, port):
            peer = await Peer.connect(port, HEADER[:100])
            peer.writer.write_eof()
            assert await peer.expect_eof() == []
    (event,) = events(logs, "agi_header_incomplete")
    assert event["received_bytes"] == 100
    assert server.stats.rejected == 1 and server.stats.sessions == 0


async def test_garbage_header_is_rejected_with_the_line_named() -> None:
    with capture_logs() as logs:
        async with running({"route": noop_script}) as (server, port):
            peer = await Peer.connect(port, b"GET / HTTP/1.1\nHost: x\n\n")
            assert await peer.expect_eof() == []
    (event,) = events(logs, "agi_header_invalid")
    assert "header line 1" in str(event["error"]) and "GET / HTTP/1.1" in str(event["error"])
    assert server.stats.rejected == 1


@pytest.mark.parametrize("terminated", [True, False])
async def test_oversized_header(terminated: bool) -> None:
    lines = [b"agi_x%d: %s\n" % (i, b"y" * 60) for i in range(20 if terminated else 1200)]
    header = HEADER[:-1] + b"".join(lines) + (b"\n" if terminated else b"")  # 2 KB or 80 KB
    with capture_logs() as logs:
        async with running({"route": noop_script}, header_max_bytes=1024) as (server, port):
            peer = await Peer.connect(port, header)
            assert await peer.expect_eof() == []
    (event,) = events(logs, "agi_header_too_large")
    assert event["limit_bytes"] == 1024
    assert server.stats.rejected == 1


async def test_slow_peer_hits_the_header_timeout() -> None:
    with capture_logs() as logs:
        async with running({"route": noop_script}, header_timeout_s=0.05) as (server, port):
            peer = await Peer.connect(port, HEADER[:200])
            assert await peer.expect_eof() == []
    assert events(logs, "agi_header_timeout")[0]["timeout_s"] == 0.05
    assert server.stats.rejected == 1


async def test_unknown_script_sets_error_status() -> None:
    with capture_logs(processors=[merge_contextvars]) as logs:
        async with running({"route": noop_script}) as (server, port):
            header = HEADER.replace(b"agi_network_script: route", b"agi_network_script: nope")
            peer = await Peer.connect(port, header)
            await peer.answer_all({ERROR: OK})
    assert peer.commands == [ERROR]
    (event,) = events(logs, "agi_unknown_script")
    assert (event["script"], event["uniqueid"]) == ("nope", "1795443851.11")
    assert event["known"] == ["route"]
    assert server.stats.errors == 1


async def test_script_exception_sets_error_status_and_logs_the_call() -> None:
    async def broken(session: AgiSession) -> None:
        await session.answer()
        raise RuntimeError("database is on fire")

    with capture_logs(processors=[merge_contextvars]) as logs:
        async with running({"route": broken}) as (server, port):
            peer = await Peer.connect(port, HEADER)
            await peer.answer_all({"ANSWER": b"200 result=0\n", ERROR: OK})
    assert peer.commands == ["ANSWER", ERROR]
    (event,) = events(logs, "agi_script_failed")
    assert (event["uniqueid"], event["script"]) == ("1795443851.11", "route")
    assert "database is on fire" in str(event["error"])
    assert (server.stats.errors, server.stats.ok) == (1, 0)


async def test_bad_arguments_set_error_status() -> None:
    async def strict(session: AgiSession) -> None:
        session.request.kwargs()  # agi_arg_1: arg1 is not key=value

    with capture_logs() as logs:
        async with running({"route": strict}) as (_, port):
            peer = await Peer.connect(port, HEADER)
            await peer.answer_all({ERROR: OK})
    assert peer.commands == [ERROR]
    assert "'arg1'" in str(events(logs, "agi_bad_arguments")[0]["error"])


async def test_session_time_limit() -> None:
    async def waits(session: AgiSession) -> None:
        await session.wait_for_digit(10_000)

    with capture_logs(processors=[merge_contextvars]) as logs:
        async with running({"route": waits}, session_timeout_s=0.1) as (server, port):
            peer = await Peer.connect(port, HEADER)
            assert await peer.read_command() == "WAIT FOR DIGIT 10000"
            assert await peer.expect_eof() == [ERROR]  # no reply awaited: out of step
    (event,) = events(logs, "agi_session_timeout")
    assert (event["timeout_s"], event["uniqueid"]) == (0.1, "1795443851.11")
    assert server.stats.errors == 1


async def test_caller_hangup_ends_quietly() -> None:
    async def script(session: AgiSession) -> None:
        await session.stream_file("demo-congrats")

    with capture_logs() as logs:
        async with running({"route": script}) as (server, port):
            peer = await Peer.connect(port, HEADER)
            hung_up = b"200 result=-1 endpos=20000\nHANGUP\n"
            await peer.answer_all({'STREAM FILE demo-congrats ""': hung_up})
    assert peer.commands == ['STREAM FILE demo-congrats ""']  # no error status
    assert (server.stats.hangups, server.stats.errors) == (1, 0)
    assert not [e for e in logs if e["log_level"] in ("warning", "error")]


async def test_close_cancels_and_awaits_live_sessions() -> None:
    cancelled = asyncio.Event()

    async def waits(session: AgiSession) -> None:
        try:
            await session.wait_for_digit(10_000)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    server = AgiServer({"route": waits}, AgiSettings(port=0))
    _, port = await server.start()
    peers = [await Peer.connect(port, HEADER) for _ in range(3)]
    for peer in peers:
        assert await peer.read_command() == "WAIT FOR DIGIT 10000"
    assert server.stats.active == 3
    await server.close()
    assert cancelled.is_set() and server.stats.active == 0
    for peer in peers:
        assert await peer.expect_eof() == []
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    await server.close()  # idempotent
    with pytest.raises(RuntimeError):
        await server.start()


# --- hypothesis: garbage never crashes or hangs ---------------------------------------------

_lines = st.lists(
    st.one_of(
        st.text(max_size=30).map(lambda t: t.replace("\n", "")),
        st.sampled_from(["agi_network_script: route", "agi_arg_1: x=1", "HANGUP", "agi_: x"]),
    ),
    max_size=8,
)


@given(_lines)
def test_parse_env_accepts_or_names_the_problem(lines: list[str]) -> None:
    try:
        env = parse_env(("\n".join(lines) + "\n\n").encode())
    except AgiProtocolError as exc:
        assert "header" in str(exc)
    else:
        assert "agi_network_script" in env and all(k.startswith("agi_") for k in env)


@given(st.binary(max_size=300))
def test_read_reply_on_garbage_returns_or_raises_typed(data: bytes) -> None:
    async def read() -> None:
        reader = asyncio.StreamReader(limit=128)
        reader.feed_data(data)
        reader.feed_eof()
        try:
            reply, _ = await read_reply(reader)
        except (AgiProtocolError, AgiHangup):
            return
        assert reply.code in range(100, 1000)
        if reply.code == 200:
            assert parse_reply(reply.lines[0]) == reply

    asyncio.run(asyncio.wait_for(read(), WAIT))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_server_survives_garbage_headers(data: bytes) -> None:
    async def scenario() -> None:
        with capture_logs():
            async with running({"route": noop_script}, header_timeout_s=0.05) as (server, port):
                peer = await Peer.connect(port, data)
                peer.writer.write_eof()
                rest = await peer.expect_eof()
                await asyncio.sleep(0)
        assert server.stats.active == 0
        if server.stats.rejected == 0:  # a valid header after all: the script ran or was unknown
            assert rest in ([], ["NOOP"], [ERROR])

    structlog.contextvars.clear_contextvars()
    asyncio.run(asyncio.wait_for(scenario(), WAIT))


# --- the daemon's loop: uvloop (its transports are not asyncio.Transport subclasses) ----------


def test_sessions_and_rejections_on_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> None:
        with capture_logs() as logs:
            async with running({"route": noop_script}, header_timeout_s=0.1) as (server, port):
                ok = await Peer.connect(port, HEADER)
                assert await ok.read_command() == "NOOP"
                ok.send(b"200 result=0\n")
                assert await ok.expect_eof() == []
                garbage = await Peer.connect(port, b"GET / HTTP/1.1\n\n")
                assert await garbage.expect_eof() == []
                slow = await Peer.connect(port, HEADER[:50])
                assert await slow.expect_eof() == []
                hangup = await Peer.connect(port, HEADER)
                assert await hangup.read_command() == "NOOP"
                hangup.send(b"HANGUP\n511 Command Not Permitted on a dead channel\n")
                assert await hangup.expect_eof() == []
        assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
            "agi_header_invalid", "agi_header_timeout"]  # fmt: skip
        s = server.stats
        assert (s.connections, s.ok, s.rejected, s.errors, s.active) == (4, 1, 2, 0, 0)

    structlog.contextvars.clear_contextvars()
    uvloop.run(asyncio.wait_for(scenario(), WAIT))


def test_connections_waiting_in_the_backlog_are_all_taken_in_one_turn_on_uvloop() -> None:
    """libuv (under uvloop's create_server) accepts one connection per turn of the loop, so a
    busy loop accepts a few hundred a second whatever waits; the server's own listener takes
    every waiting connection when it finds the socket readable: 64 connections made while
    the loop was held are all connections a few turns later (not one or two)."""
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> None:
        async with running({"route": noop_script}) as (server, port):
            socks = []
            try:
                for _ in range(64):  # blocking connects: the loop cannot accept meanwhile
                    sock = socket.create_connection(("127.0.0.1", port), timeout=3.0)
                    socks.append(sock)
                for _ in range(4):  # the reader's turn, the attaching tasks' turn, spare ones
                    await asyncio.sleep(0)
                assert server.stats.connections == 64
            finally:
                for sock in socks:
                    sock.close()

    uvloop.run(asyncio.wait_for(scenario(), WAIT))


class _Flaky:
    """A listening socket whose accept() fails as scripted before it accepts for real."""

    def __init__(self, real: socket.socket, errors: list[OSError]) -> None:
        self.real, self.errors = real, errors

    def fileno(self) -> int:
        return self.real.fileno()

    def accept(self) -> tuple[socket.socket, Any]:
        if self.errors:
            raise self.errors.pop(0)
        return self.real.accept()


async def test_out_of_descriptors_pauses_accepting_and_loses_no_connection(
        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """EMFILE while accepting: a warning, accepting pauses (the connection waits in the
    kernel's backlog, nothing is closed) and resumes by itself; an aborted connection is
    passed over."""
    import errno

    from ccrouter.pbx.agi import listener as lm

    monkeypatch.setattr(lm, "_PAUSE_S", 0.05)
    (real,) = lm.listen("127.0.0.1", 0, 16)
    flaky = _Flaky(real, [ConnectionAbortedError(), OSError(errno.EMFILE, "Too many open files")])
    got: list[socket.socket] = []
    accepted = asyncio.Event()

    def on_accepted(sock: socket.socket) -> None:
        got.append(sock)
        accepted.set()

    listener = lm.Listener([flaky], on_accepted, name="test")  # type: ignore[list-item]
    listener.start()
    client = socket.create_connection(real.getsockname()[:2], timeout=3.0)
    try:
        with capture_logs() as logs:
            await asyncio.wait_for(accepted.wait(), WAIT)
        assert [e["event"] for e in logs] == ["agi_accept_failed"]
        assert len(got) == 1 and not flaky.errors
        assert got[0].getpeername() == client.getsockname()
    finally:
        listener.stop()
        for sock in (*got, client, real):
            sock.close()


def test_a_port_in_use_names_the_address() -> None:
    from ccrouter.pbx.agi.listener import listen
    from ccrouter.pbx.agi.server import ListenError

    (taken,) = listen("127.0.0.1", 0, 16)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(OSError) as caught:
            listen("127.0.0.1", port, 16)
        assert str(ListenError.of(caught.value, "127.0.0.1", port)) == (
            f"address already in use: 127.0.0.1:{port}")
    finally:
        taken.close()

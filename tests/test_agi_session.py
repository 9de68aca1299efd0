"""AgiSession against a peer that plays Asterisk from the recorded transcripts, over real sockets.

`Peer`, `header_of`, `running` are shared with the other test_agi_* modules.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from ccrouter.config import AgiSettings
from ccrouter.pbx.agi import (
    AgiArgumentError,
    AgiCommandError,
    AgiHangup,
    AgiProtocolError,
    AgiReply,
    AgiRequest,
    AgiServer,
    AgiSession,
    AgiTimeoutError,
)
from ccrouter.pbx.agi.session import parse_env, parse_reply, quote
from tests.conftest import agi_transcript

WAIT = 5.0
"""Upper bound for any single read in these tests (a hang fails fast instead of at 60 s)."""


def header_of(name: str, extra: tuple[str, ...] = ()) -> bytes:
    """The `agi_*` block of a transcript, with `extra` lines inserted before the blank line."""
    lines = []
    for direction, line in agi_transcript(name):
        assert direction == ">>"
        if line == b"\n":
            break
        lines.append(line)
    lines.extend(f"{x}\n".encode() for x in extra)
    return b"".join(lines) + b"\n"


def body_of(name: str) -> list[tuple[str, bytes]]:
    """The transcript after the header block."""
    lines = agi_transcript(name)
    return lines[lines.index((">>", b"\n")) + 1 :]


class Peer:
    """Plays Asterisk: connects, sends a header, reads commands and answers them."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.commands: list[str] = []

    @classmethod
    async def connect(cls, port: int, header: bytes = b"") -> Peer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        peer = cls(reader, writer)
        if header:
            writer.write(header)
        return peer

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def read_command(self) -> str | None:
        """The next command line, or None at EOF (or a reset: the server is gone either way)."""
        try:
            async with asyncio.timeout(WAIT):
                line = await self.reader.readline()
        except ConnectionResetError:
            return None
        if not line:
            return None
        assert line.endswith(b"\n") and not line.endswith(b"\r\n"), line
        text = line[:-1].decode()
        self.commands.append(text)
        return text

    async def expect_eof(self) -> list[str]:
        """Read until the server closes; the commands that arrived meanwhile."""
        rest: list[str] = []
        while (line := await self.read_command()) is not None:
            rest.append(line)
        return rest

    async def replay(self, body: list[tuple[str, bytes]]) -> None:
        """Strict replay: every `<<` line must be what the server sends next."""
        for direction, raw in body:
            if direction == "<<":
                assert await self.read_command() == raw.decode().rstrip("\n")
            else:
                self.send(raw)

    async def answer_all(self, replies: dict[str, bytes], default: bytes | None = None) -> None:
        """Answer each command from `replies` (or `default`) until the server closes."""
        while (line := await self.read_command()) is not None:
            reply = replies.get(line, default)
            assert reply is not None, f"unexpected command {line!r}"
            self.send(reply)

    def close(self) -> None:
        self.writer.close()


def replies_of(name: str) -> dict[str, bytes]:
    """Command -> the reply bytes Asterisk sent for its first occurrence in a transcript."""
    out: dict[str, bytes] = {}
    current: str | None = None
    for direction, raw in body_of(name):
        if direction == "<<":
            current = raw.decode().rstrip("\n")
            if current in out:
                current = None
            else:
                out[current] = b""
        elif current is not None:
            out[current] += raw
    return out


@asynccontextmanager
async def running(
    scripts: dict[str, Callable[[AgiSession], Awaitable[None]]], **settings: Any
) -> AsyncIterator[tuple[AgiServer, int]]:
    server = AgiServer(scripts, AgiSettings(host="127.0.0.1", port=0, **settings))
    _, port = await server.start()
    try:
        yield server, port
    finally:
        await server.close()


# --- pure parsing -----------------------------------------------------------------------


def test_request_from_the_recorded_header() -> None:
    req = AgiRequest.from_env(parse_env(header_of("agi-session.txt")))
    assert (req.script, req.query, req.args) == ("route", "lang=ru", ("arg1", "arg2"))
    assert (req.uniqueid, req.channel) == ("1795443851.11", "Local/agi-demo@lab-inbound-00000005;2")
    assert (req.caller_num, req.caller_name) == ("79001234567", "Lab Caller RU")
    assert (req.dnid, req.extension, req.context) == ("", "agi-demo", "lab-inbound")
    assert req.language == "en"
    assert req.env["agi_accountcode"] == ""
    assert req.env["agi_request"] == "agi://127.0.0.1:4573/route?lang=ru"
    with pytest.raises(AgiArgumentError, match="'arg1'"):
        req.kwargs()


def test_request_kwargs_and_unknown_names() -> None:
    env = {
        "agi_network_script": "/route",
        "agi_callerid": "unknown",
        "agi_calleridname": "unknown",
        "agi_arg_1": "product=wallet",
        "agi_arg_2": "",
        "agi_arg_3": " lang = uz ",
        "agi_arg_5": "ignored=gap",
    }
    req = AgiRequest.from_env(env)
    assert req.script == "route" and req.caller_num == "" and req.caller_name == ""
    assert req.kwargs() == {"product": "wallet", "lang": "uz"}
    twice = AgiRequest.from_env({**env, "agi_arg_4": "product=x"})
    with pytest.raises(AgiArgumentError, match="'product' given twice"):
        twice.kwargs()


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (b"hello world\n\n", "header line 1 .*'hello world'"),
        (b"agi_network_script: route\nagi_channel Local/x\n\n", "header line 2"),
        (b"agi_: x\nagi_network_script: route\n\n", "header line 1"),
        (b"agi_channel: Local/x\n\n", "no agi_network_script"),
    ],
)
def test_garbage_header_is_named(block: bytes, message: str) -> None:
    with pytest.raises(AgiProtocolError, match=message):
        parse_env(block)


def test_reply_shapes() -> None:
    assert parse_reply("200 result=1 (support-ru)") == AgiReply(
        200, "1", "support-ru", None, ("200 result=1 (support-ru)",)
    )
    timeout = parse_reply("200 result= (timeout)")
    assert (timeout.result, timeout.data, timeout.endpos) == ("", "timeout", None)
    played = parse_reply("200 result=53 endpos=4000")
    assert (played.number(), played.data, played.endpos) == (53, None, 4000)
    nested = parse_reply("200 result=1 (a (b) c) endpos=7")
    assert (nested.data, nested.endpos) == ("a (b) c", 7)
    dead = "511 Command Not Permitted on a dead channel or intercept routine"
    assert parse_reply(dead) == AgiReply(511, "", None, None, (dead,))
    for bad in ("HELLO", "200 ok", "20 result=1", "200 result=1 (open", "200 result=0 endpos=x"):
        with pytest.raises(AgiProtocolError):
            parse_reply(bad)


def test_quoting_follows_res_agi_parse_args() -> None:
    assert quote("support-ru") == "support-ru"
    assert quote("") == '""'
    assert quote("Lab Caller") == '"Lab Caller"'
    assert quote('say "hi" \\o/') == '"say \\"hi\\" \\\\o/"'
    with pytest.raises(AgiArgumentError, match="line break"):
        quote("two\nlines")


# --- over a socket, replaying the recorded sessions --------------------------------------


async def test_reply_zoo_of_the_recorded_session() -> None:
    body = body_of("agi-session.txt")
    outcomes: list[AgiReply | Exception] = []

    async def script(session: AgiSession) -> None:
        for direction, raw in body:
            if direction == "<<":
                try:
                    outcomes.append(await session.command(raw.decode().rstrip("\n")))
                except AgiCommandError as exc:
                    outcomes.append(exc)
        assert not session.dead

    async with running({"route": script}) as (server, port):
        peer = await Peer.connect(port, header_of("agi-session.txt"))
        await peer.replay(body)
        assert await peer.expect_eof() == []

    def shape(o: AgiReply | Exception) -> tuple[object, ...]:
        if isinstance(o, AgiCommandError):
            return (o.reply.code, len(o.reply.lines))
        assert isinstance(o, AgiReply), o
        return (o.code, o.result, o.data, o.endpos)

    assert [shape(o) for o in outcomes] == [
        (200, "0", None, None),  # ANSWER
        (200, "1", None, None),  # VERBOSE
        (200, "6", None, None),  # CHANNEL STATUS
        (200, "0", None, None),  # NOOP
        (200, "1", None, None),  # SET VARIABLE
        (200, "1", "support-ru", None),
        (200, "0", None, None),  # GET VARIABLE of a missing variable
        (200, "1", "79001234567", None),
        (200, "1", "Lab Caller RU <79001234567> en", None),
        (200, "0", None, 3404),  # STREAM FILE beep
        (200, "53", None, 4000),  # interrupted by '5'
        (200, "-1", None, 0),  # missing file: not a hang-up
        (200, "", "timeout", None),  # GET DATA timeout
        (200, "1234", None, None),
        (200, "55", None, None),  # WAIT FOR DIGIT '7'
        (200, "0", None, None),
        (200, "12", None, None),  # '#' ends GET DATA
        (200, "0", None, 3404),  # GET OPTION
        (200, "1", None, None),  # DATABASE PUT
        (200, "1", "support-ru", None),
        (200, "0", None, None),
        (200, "0", None, None),  # SAY DIGITS
        (200, "0", None, None),  # SAY NUMBER
        (200, "0", None, None),  # EXEC Playback
        (200, "-2", None, None),  # EXEC of an unknown application
        (510, 1),
        (520, 7),
        (200, "1", None, None),
    ]
    usage = outcomes[-2]
    assert isinstance(usage, AgiCommandError)
    assert usage.reply.lines[-1] == "520 End of proper usage."
    assert "<literal>0</literal>" in usage.reply.text
    assert server.stats.ok == 1


async def test_typed_helpers_send_the_recorded_commands() -> None:
    got: dict[str, object] = {}

    async def script(s: AgiSession) -> None:
        await s.answer()
        await s.verbose("FastAGI lab session started", 1)
        got["status"] = (await s.command("CHANNEL STATUS")).number()
        await s.command("NOOP")
        await s.set_variable("TARGET_QUEUE", "support-ru")
        got["var"] = await s.get_variable("TARGET_QUEUE")
        got["missing"] = await s.get_variable("NO_SUCH_VARIABLE")
        got["num"] = await s.get_full_variable("${CALLERID(num)}")
        got["full"] = await s.get_full_variable(
            "${CALLERID(name)} <${CALLERID(num)}> ${CHANNEL(language)}"
        )
        got["beep"] = await s.stream_file("beep")
        got["hello"] = await s.stream_file("hello-world", "0123456789#*")
        with pytest.raises(AgiCommandError, match="could not play 'no-such-sound-file'"):
            await s.stream_file("no-such-sound-file")
        got["data"] = [await s.get_data("beep", 2000, 4), await s.get_data("beep", 5000, 4)]
        got["digits"] = [await s.wait_for_digit(3000), await s.wait_for_digit(1000)]
        got["data"].append(await s.get_data("beep", 5000, 4))  # type: ignore[attr-defined]
        for line in ("GET OPTION beep \"123\" 1000", "DATABASE PUT lab lastqueue support-ru"):
            await s.command(line)
        await s.command("DATABASE GET lab lastqueue")
        await s.command("DATABASE GET lab nokey")
        got["say"] = await s.say_digits("123")
        await s.command('SAY NUMBER 42 ""')
        got["exec"] = await s.exec("Playback", "beep")
        with pytest.raises(AgiCommandError, match="no such application 'NoSuchApplication'"):
            await s.exec("NoSuchApplication", "foo")
        with pytest.raises(AgiCommandError, match="510 Invalid or unknown command"):
            await s.command("THIS IS NOT A COMMAND")
        with pytest.raises(AgiCommandError, match="520 End of proper usage"):
            await s.command("STREAM FILE")
        await s.set_variable("TARGET_QUEUE", "support-ru")

    async with running({"route": script}) as (server, port):
        peer = await Peer.connect(port, header_of("agi-session.txt"))
        await peer.replay(body_of("agi-session.txt"))
        assert await peer.expect_eof() == []
    assert server.stats.as_dict()["ok"] == 1, server.stats
    assert got == {
        "status": 6,
        "var": "support-ru",
        "missing": None,
        "num": "79001234567",
        "full": "Lab Caller RU <79001234567> en",
        "beep": None,
        "hello": "5",
        "data": [None, "1234", "12"],
        "digits": ["7", None],
        "say": None,
        "exec": 0,
    }


async def test_caller_hangup_mid_session() -> None:
    seen: list[object] = []

    async def script(s: AgiSession) -> None:
        await s.verbose("hangup test")
        await s.set_variable("LAB_STATE", "before-hangup")
        with pytest.raises(AgiHangup) as hung:
            await s.stream_file("demo-congrats")
        assert hung.value.reply is not None and hung.value.reply.endpos == 20000
        assert s.dead
        for call in (s.stream_file("beep"), s.command("CHANNEL STATUS"), s.answer()):
            with pytest.raises(AgiHangup, match="channel is dead"):  # no round trip
                await call
        seen.append(await s.get_variable("LAB_STATE"))  # still works, like real Asterisk
        await s.wait_for_digit(1000)  # raises AgiHangup: the server ends the session quietly

    async with running({"hangup-test": script}) as (server, port):
        peer = await Peer.connect(port, header_of("agi-session-hangup.txt"))
        await peer.answer_all(replies_of("agi-session-hangup.txt"))
    assert peer.commands == [
        'VERBOSE "hangup test" 1',
        "SET VARIABLE LAB_STATE before-hangup",
        'STREAM FILE demo-congrats ""',
        "GET VARIABLE LAB_STATE",
    ]
    assert seen == ["before-hangup"]
    assert (server.stats.hangups, server.stats.errors, server.stats.ok) == (1, 0, 0)


async def test_511_and_late_hangup_notice_mark_the_session_dead() -> None:
    dead = b"511 Command Not Permitted on a dead channel or intercept routine\n"
    outcomes: list[object] = []

    async def script(s: AgiSession) -> None:
        with pytest.raises(AgiHangup) as exc:
            await s.answer()
        assert exc.value.reply is not None and exc.value.reply.code == 511
        outcomes.append(s.dead)
        outcomes.append(await s.get_variable("X"))

    async def notice_first(s: AgiSession) -> None:
        outcomes.append(await s.get_variable("X"))  # HANGUP notice, then the reply
        outcomes.append(s.dead)
        await s.command("NOOP")

    async with running({"a": script, "b": notice_first}) as (_, port):
        peer = await Peer.connect(port, header_of("agi-route-session.txt").replace(b"route", b"a"))
        await peer.answer_all({"ANSWER": dead, "GET VARIABLE X": b"200 result=1 (x)\n"})
        peer = await Peer.connect(port, header_of("agi-route-session.txt").replace(b"route", b"b"))
        await peer.answer_all(
            {"GET VARIABLE X": b"HANGUP\n200 result=1 (y)\n", "NOOP": b"200 result=0\n"}
        )
    assert outcomes == [True, "x", "y", True]


async def test_asterisk_closing_the_socket_is_a_hangup() -> None:
    raised: list[BaseException] = []

    async def script(s: AgiSession) -> None:
        try:
            await s.answer()
        except AgiHangup as exc:
            raised.append(exc)
            raise

    async with running({"route": script}) as (server, port):
        peer = await Peer.connect(port, header_of("agi-route-session.txt"))
        assert await peer.read_command() == "ANSWER"
        peer.send(b"200 res")  # a torn line, then EOF
        peer.writer.write_eof()
        assert await peer.expect_eof() == []
    assert len(raised) == 1 and "closed" in str(raised[0])
    assert server.stats.hangups == 1


async def test_command_timeout_leaves_the_session_out_of_step() -> None:
    raised: list[BaseException] = []

    async def script(s: AgiSession) -> None:
        await s.command("NOOP")
        await asyncio.sleep(0.08)  # idle longer than the timeout: the timer must not fire
        await s.command("NOOP")
        with pytest.raises(AgiTimeoutError, match="WAIT FOR DIGIT"):
            await s.wait_for_digit(5000)
        assert s.broken
        with pytest.raises(AgiProtocolError, match="out of step"):
            await s.command("NOOP")
        try:
            await s.answer()
        except AgiProtocolError as exc:
            raised.append(exc)
            raise

    async with running({"route": script}, command_timeout_s=0.05) as (server, port):
        peer = await Peer.connect(port, header_of("agi-route-session.txt"))
        for _ in range(2):
            assert await peer.read_command() == "NOOP"
            peer.send(b"200 result=0\n")
        assert await peer.read_command() == "WAIT FOR DIGIT 5000"
        # The error status is written without waiting for a reply (the stream is out of step).
        assert await peer.expect_eof() == ["SET VARIABLE CCROUTER_STATUS error"]
    assert len(raised) == 1 and server.stats.errors == 1


async def test_bad_values_are_refused_before_the_wire() -> None:
    async def script(s: AgiSession) -> None:
        with pytest.raises(AgiArgumentError, match="variable name"):
            await s.set_variable("TWO WORDS", "x")
        with pytest.raises(AgiArgumentError, match="line break"):
            await s.set_variable("X", "a\nHANGUP")
        with pytest.raises(AgiArgumentError, match="DTMF"):
            await s.stream_file("beep", "0x")
        with pytest.raises(AgiArgumentError, match="line break"):
            await s.command("NOOP\nANSWER")
        await s.set_variable("X", 'say "hi"')

    async with running({"route": script}) as (server, port):
        peer = await Peer.connect(port, header_of("agi-route-session.txt"))
        await peer.answer_all({}, default=b"200 result=1\n")
    assert peer.commands == ['SET VARIABLE X "say \\"hi\\""']
    assert server.stats.ok == 1


async def test_set_variables_is_one_mset_or_one_set_variable_each() -> None:
    """EXEC MSet (answered `200 result=0` like `EXEC Playback` in agi-session.txt) for plain
    values; SET VARIABLE each for one pair, a value MSet would mangle, or an empty one; a
    missing MSet application (`result=-2`) is an AgiCommandError."""

    async def script(s: AgiSession) -> None:
        await s.set_variables([("A", "1"), ("B_2", "x-y.z@q:1/2+*#")])
        await s.set_variables([("ONE", "1")])
        await s.set_variables([("A", "1"), ("C", "a,b")])
        await s.set_variables([("A", "1"), ("E", "")])
        await s.set_variables([])
        with pytest.raises(AgiCommandError, match="no such application 'MSet'"):
            await s.set_variables([("A", "1"), ("B", "2")])
        with pytest.raises(AgiArgumentError, match="variable name"):
            await s.set_variables([("A", "1"), ("BAD NAME", "2")])

    replies = {"EXEC MSet A=1,B=2": b"200 result=-2\n"}
    async with running({"route": script}) as (server, port):
        peer = await Peer.connect(port, header_of("agi-route-session.txt"))
        await peer.answer_all(replies, default=b"200 result=0\n")
    assert peer.commands == [
        "EXEC MSet A=1,B_2=x-y.z@q:1/2+*#",
        "SET VARIABLE ONE 1",
        "SET VARIABLE A 1",
        'SET VARIABLE C a,b',
        "SET VARIABLE A 1",
        'SET VARIABLE E ""',
        "EXEC MSet A=1,B=2",
    ]
    assert server.stats.ok == 1

"""One FastAGI session: the request Asterisk sent, and typed commands over the socket.

The wire (checked against Asterisk 22, see fixtures/asterisk/agi-*.txt): bare `\\n` both ways;
replies are `200 result=N [(data)] [endpos=N]`, `510 ...`, a multi-line `520-...` block ending in
`520 End of proper usage.`, `511 Command Not Permitted on a dead channel...`; and an unsolicited
`HANGUP` line after a caller hang-up and at the end of every session.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat

_MAX_REPLY_BYTES = 1 << 16
"""A reply (520 usage blocks included) larger than this is not Asterisk talking."""

_DEAD_OK = (
    "GET VARIABLE",
    "GET FULL VARIABLE",
    "SET VARIABLE",
    "NOOP",
    "VERBOSE",
    "DATABASE ",
    "EXEC ",
    "ASYNCAGI BREAK",
    "SPEECH DESTROY",
    "SPEECH UNLOAD GRAMMAR",
)
"""Commands res_agi permits on a dead channel (its `dead` flag); the rest answer 511."""

_UNKNOWN = "unknown"


class AgiError(Exception):
    """Base of every error this package raises."""


class AgiProtocolError(AgiError):
    """The peer sent something that is not FastAGI (bad header line, bad reply line)."""


class AgiArgumentError(AgiError, ValueError):
    """A dialplan argument, or a value passed to a command, is malformed."""


class AgiHangup(AgiError):
    """The channel hung up (HANGUP notice, 511, `result=-1`), or Asterisk closed the socket."""

    def __init__(self, message: str, reply: AgiReply | None = None) -> None:
        super().__init__(message)
        self.reply = reply


class AgiCommandError(AgiError):
    """Asterisk refused a command (510 unknown, 520 usage, other codes) or it failed."""

    def __init__(self, message: str, reply: AgiReply) -> None:
        super().__init__(f"{message}: {reply.text}")
        self.reply = reply


class AgiTimeoutError(AgiError, TimeoutError):
    """No reply within the per-command timeout."""


# --- the request ------------------------------------------------------------------------


def parse_env(block: bytes) -> dict[str, str]:
    """The `agi_key: value` lines of a header block (its final blank line optional)."""
    text = block.decode("utf-8", "replace")
    if text.endswith("\n\n"):
        text = text[:-2]
    lines = text.split("\n")
    env: dict[str, str] | None = None
    if (  # fast path, all in C: every line starts with `agi_`, none with `agi_:`, no `\r`
        text.startswith("agi_")
        and text.count("\nagi_") == len(lines) - 1
        and "\nagi_:" not in text
        and "\r" not in text
        and not text.startswith("agi_:")
    ):
        with contextlib.suppress(ValueError):  # a line without ": "
            env = dict(map(str.split, lines, repeat(": "), repeat(1)))
    if env is None:
        env = _parse_env_slowly(lines)
    if "agi_network_script" not in env:
        raise AgiProtocolError("header has no agi_network_script line")
    return env


def _parse_env_slowly(lines: list[str]) -> dict[str, str]:
    """Line by line: tolerates `\r\n` and `agi_key:value`, names the first bad line."""
    env: dict[str, str] = {}
    for lineno, line in enumerate(lines, 1):
        if line.endswith("\r"):
            line = line[:-1]
        key, sep, value = line.partition(":")
        if not sep or not key.startswith("agi_") or len(key) < 5:
            raise AgiProtocolError(f"header line {lineno} is not 'agi_key: value': {line[:80]!r}")
        env[key] = value[1:] if value.startswith(" ") else value
    return env


def parse_kwarg(arg: str) -> tuple[str, str]:
    """`key=value` -> (key, value), both stripped; AgiArgumentError naming a malformed one."""
    key, sep, value = arg.partition("=")
    key = key.strip()
    if not sep or not key or not key.replace("_", "").replace("-", "").isalnum():
        raise AgiArgumentError(f"AGI argument {arg!r} is not key=value")
    return key, value.strip()


@dataclass(frozen=True, slots=True)
class AgiRequest:
    env: Mapping[str, str]
    script: str
    query: str
    """Whatever followed `?` in the URL (kept for the log; pass data as arguments instead)."""
    args: tuple[str, ...]
    uniqueid: str
    channel: str
    caller_num: str
    caller_name: str
    dnid: str
    extension: str
    context: str
    language: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AgiRequest:
        path, _, query = env.get("agi_network_script", "").partition("?")
        args: list[str] = []
        while (arg := env.get(f"agi_arg_{len(args) + 1}")) is not None:
            args.append(arg)

        def known(key: str) -> str:
            value = env.get(key, "")
            return "" if value == _UNKNOWN else value

        return cls(
            env=env,
            script=path.lstrip("/"),
            query=query,
            args=tuple(args),
            uniqueid=env.get("agi_uniqueid", ""),
            channel=env.get("agi_channel", ""),
            caller_num=known("agi_callerid"),
            caller_name=known("agi_calleridname"),
            dnid=known("agi_dnid"),
            extension=env.get("agi_extension", ""),
            context=env.get("agi_context", ""),
            language=env.get("agi_language", ""),
        )

    def kwargs(self) -> dict[str, str]:
        """The `key=value` arguments (empty ones skipped).

        AgiArgumentError on a malformed or repeated one.
        """
        out: dict[str, str] = {}
        for arg in self.args:
            if not arg.strip():
                continue
            key, value = parse_kwarg(arg)
            if key in out:
                raise AgiArgumentError(f"AGI argument {key!r} given twice")
            out[key] = value
        return out


# --- replies ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgiReply:
    code: int
    result: str
    data: str | None
    endpos: int | None
    lines: tuple[str, ...]
    """The raw line(s), without their `\\n`."""

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def number(self) -> int:
        """`result` as an integer (AgiProtocolError when it is not one)."""
        try:
            return int(self.result)
        except ValueError:
            raise AgiProtocolError(f"expected a numeric result in {self.text!r}") from None


def parse_reply(line: str) -> AgiReply:
    """One single-line reply (`200 result=...`, `510 ...`, `511 ...`)."""
    if line[:11] == "200 result=" and " " not in line[11:]:  # the common shape, fast
        return AgiReply(200, line[11:], None, None, (line,))
    code_text, _, rest = line.partition(" ")
    if len(code_text) != 3 or not code_text.isdigit():
        raise AgiProtocolError(f"not an AGI reply line: {line[:80]!r}")
    code = int(code_text)
    if code != 200:
        return AgiReply(code, "", None, None, (line,))
    if not rest.startswith("result="):
        raise AgiProtocolError(f"200 reply without result=: {line[:80]!r}")
    result, _, tail = rest[7:].partition(" ")
    data: str | None = None
    if tail.startswith("("):
        close = tail.rfind(")")
        if close < 0:
            raise AgiProtocolError(f"unbalanced '(' in reply: {line[:80]!r}")
        data, tail = tail[1:close], tail[close + 1 :]
    endpos: int | None = None
    for token in tail.split():
        if token.startswith("endpos="):
            try:
                endpos = int(token[7:])
            except ValueError:
                raise AgiProtocolError(f"bad endpos in reply: {line[:80]!r}") from None
    return AgiReply(200, result, data, endpos, (line,))


async def read_reply(reader: asyncio.StreamReader) -> tuple[AgiReply, bool]:
    """The next reply, and whether a `HANGUP` notice came before it.

    AgiHangup when the socket closes first; AgiProtocolError on anything not FastAGI.
    """
    hangup = False
    while True:
        line = await _readline(reader)
        if line == "HANGUP":
            hangup = True
            continue
        if line.startswith("100 "):  # "100 result=0 Trying...": the real reply follows
            continue
        if line.startswith("520-"):
            return await _read_usage(reader, line), hangup
        return parse_reply(line), hangup


async def _read_usage(reader: asyncio.StreamReader, first: str) -> AgiReply:
    lines = [first]
    size = len(first)
    while True:
        line = await _readline(reader)
        lines.append(line)
        size += len(line) + 1
        if line.startswith("520 "):
            return AgiReply(520, "", None, None, tuple(lines))
        if size > _MAX_REPLY_BYTES:
            raise AgiProtocolError(f"520 usage block longer than {_MAX_REPLY_BYTES} bytes")


async def _readline(reader: asyncio.StreamReader) -> str:
    try:
        raw = await reader.readline()
    except ValueError:  # LimitOverrunError surfaces as ValueError from readline()
        raise AgiProtocolError("reply line longer than the stream limit") from None
    if not raw.endswith(b"\n"):
        raise AgiHangup("Asterisk closed the FastAGI socket")
    return raw[:-1].decode("utf-8", "replace")


# --- quoting ----------------------------------------------------------------------------


def _check_line(text: str, what: str) -> None:
    if "\n" in text or "\r" in text or "\0" in text:
        raise AgiArgumentError(f"{what} must not contain a line break or NUL: {text[:80]!r}")


_QUOTE = frozenset(' \t"\\\n\r\0')
_MSET_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.+@:/*#")
"""Characters a name or value may hold to travel in one `EXEC MSet` unchanged: no separator
(`,` `|` `=`), quote, backslash, bracket, parenthesis, `$` or space (app.c's argument splitter
treats those specially; MSet strips quotes)."""
_MSET_MAX = 99
"""pbx_builtin_setvar_multiple parses at most 99 pairs."""
_MSET_MAX_BYTES = 1024
"""Well under res_agi's 2048-byte command buffer."""
_DTMF = frozenset("0123456789*#ABCD")


def quote(value: str) -> str:
    """One AGI command argument: bare when safe, else in double quotes with `\\`/`"` escaped."""
    if value and _QUOTE.isdisjoint(value):
        return value
    _check_line(value, "AGI argument")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _word(value: str, what: str) -> str:
    if not value or not _QUOTE.isdisjoint(value):
        raise AgiArgumentError(f"{what} must be a non-empty word: {value[:80]!r}")
    return value


def _digits(value: str, what: str) -> str:
    if not _DTMF.issuperset(value):
        raise AgiArgumentError(f"{what} may hold only DTMF digits: {value[:80]!r}")
    return value


def _dtmf(reply: AgiReply) -> str | None:
    code = reply.number()
    if code <= 0:
        return None
    if code > 0x7F:
        raise AgiProtocolError(f"digit result is not ASCII: {reply.text!r}")
    return chr(code)


# --- the session ------------------------------------------------------------------------


class AgiSession:
    """Commands over one FastAGI connection; one command in flight at a time.

    The per-command timeout uses one lazily re-armed timer per session rather than a timer per
    command (a command only moves the deadline; the timer re-arms itself when it fires early).
    """

    __slots__ = (
        "_broken",
        "_dead",
        "_deadline",
        "_expired",
        "_reader",
        "_timeout",
        "_timer",
        "_waiter",
        "_writer",
        "request",
    )

    def __init__(
        self,
        request: AgiRequest,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        command_timeout_s: float,
    ) -> None:
        self.request = request
        self._reader = reader
        self._writer = writer
        self._timeout = command_timeout_s
        self._dead = False
        self._broken = False
        self._deadline = 0.0
        """Loop time by which the command in flight must be answered; 0.0 when idle."""
        self._timer: asyncio.TimerHandle | None = None
        self._waiter: asyncio.Task[object] | None = None
        self._expired = False

    @property
    def dead(self) -> bool:
        """The channel hung up: channel commands raise AgiHangup without a round trip."""
        return self._dead

    @property
    def broken(self) -> bool:
        """A command was interrupted (timeout, cancel, bad reply): the stream is out of step."""
        return self._broken

    def close(self) -> None:
        """Drop the command timer (the server calls this when the connection ends)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        if not self._deadline or self._waiter is None:
            return  # idle: the next command re-arms
        loop = asyncio.get_running_loop()
        if loop.time() < self._deadline:
            self._timer = loop.call_at(self._deadline, self._on_timer)
        else:
            self._expired = True
            self._waiter.cancel()

    async def command(self, line: str) -> AgiReply:
        """Send one command line, return its reply.

        AgiHangup: the channel is dead (HANGUP notice, 511, `result=-1` of a channel command);
        AgiCommandError: 510/520/other codes; AgiTimeoutError: no reply in time.
        """
        _check_line(line, "AGI command")
        if self._broken:
            raise AgiProtocolError("session is out of step after an interrupted command")
        head = line[:24].upper()
        channel_cmd = not head.startswith(_DEAD_OK)
        if self._dead and channel_cmd:
            raise AgiHangup(f"channel is dead, not sending {line[:40]!r}")
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + self._timeout
        self._waiter = waiter = asyncio.current_task()
        if self._timer is None:
            self._timer = loop.call_at(self._deadline, self._on_timer)
        self._writer.write(line.encode() + b"\n")
        done = False
        try:
            reply, hangup = await read_reply(self._reader)
            done = True
        except asyncio.CancelledError:
            if not self._expired or waiter is None:
                raise
            self._expired = False
            waiter.uncancel()
            raise AgiTimeoutError(f"no reply to {line[:40]!r} in {self._timeout} s") from None
        except AgiHangup:
            self._dead = True
            raise
        finally:
            self._deadline = 0.0
            self._waiter = None
            if not done:
                self._broken = True
        if hangup:
            self._dead = True
        if reply.code == 200:
            if (reply.result == "-1" and reply.endpos != 0) and (
                channel_cmd or head.startswith("EXEC ")
            ):
                self._dead = True
                raise AgiHangup(f"channel hung up during {line[:40]!r}", reply)
            if self._dead and channel_cmd:
                raise AgiHangup(f"channel hung up during {line[:40]!r}", reply)
            return reply
        if reply.code == 511:
            self._dead = True
            raise AgiHangup(f"dead channel refused {line[:40]!r}", reply)
        if reply.code == 510:
            raise AgiCommandError(f"unknown command {line[:40]!r}", reply)
        if reply.code == 520:
            raise AgiCommandError(f"bad usage of {line[:40]!r}", reply)
        raise AgiCommandError(f"{line[:40]!r} failed", reply)

    def send_without_reply(self, line: str) -> None:
        """Best-effort last words when the stream is out of step: write `line`, read nothing."""
        _check_line(line, "AGI command")
        self._writer.write(line.encode() + b"\n")

    # typed helpers ------------------------------------------------------------------------

    async def answer(self) -> None:
        await self.command("ANSWER")

    async def hangup(self) -> None:
        await self.command("HANGUP")
        self._dead = True

    async def verbose(self, msg: str, level: int = 1) -> None:
        if not 1 <= level <= 4:
            raise AgiArgumentError(f"verbose level must be 1..4, got {level}")
        await self.command(f"VERBOSE {quote(msg)} {level}")

    async def set_variable(self, name: str, value: str) -> None:
        await self.command(f"SET VARIABLE {_word(name, 'variable name')} {quote(value)}")

    async def set_variables(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Set several channel variables, in order, in one round trip when possible.

        `EXEC MSet NAME1=v1,NAME2=v2,...` (Asterisk's core MSet application, main/pbx_variables.c)
        when every name and value is non-empty and made of plain characters; otherwise one
        `SET VARIABLE` per pair, exactly as `set_variable` does.
        """
        if not pairs:
            return
        if len(pairs) > 1 and len(pairs) <= _MSET_MAX:
            data = ",".join(f"{_word(n, 'variable name')}={v}" for n, v in pairs)
            if len(data) <= _MSET_MAX_BYTES and all(
                v and _MSET_SAFE.issuperset(n) and _MSET_SAFE.issuperset(v) for n, v in pairs
            ):
                reply = await self.command(f"EXEC MSet {data}")
                if reply.result == "-2":
                    raise AgiCommandError("no such application 'MSet'", reply)
                return
        for name, value in pairs:
            await self.set_variable(name, value)

    async def get_variable(self, name: str) -> str | None:
        reply = await self.command(f"GET VARIABLE {_word(name, 'variable name')}")
        return (reply.data or "") if reply.result == "1" else None

    async def get_full_variable(self, expr: str) -> str | None:
        reply = await self.command(f"GET FULL VARIABLE {quote(expr)}")
        return (reply.data or "") if reply.result == "1" else None

    async def stream_file(self, prompt: str, escape_digits: str = "") -> str | None:
        """Play `prompt`; the digit that interrupted it, or None. AgiCommandError if missing."""
        escape = _digits(escape_digits, "escape digits")
        reply = await self.command(f'STREAM FILE {_word(prompt, "prompt")} "{escape}"')
        if reply.result == "-1":  # endpos=0 and no hang-up: the file could not be played
            raise AgiCommandError(f"could not play {prompt!r}", reply)
        return _dtmf(reply)

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> str | None:
        """Play `prompt` and collect digits (`#` ends); None when nothing was typed in time."""
        if timeout_ms < 0 or max_digits < 1:
            raise AgiArgumentError(f"bad GET DATA limits: {timeout_ms=} {max_digits=}")
        reply = await self.command(f"GET DATA {_word(prompt, 'prompt')} {timeout_ms} {max_digits}")
        return reply.result or None

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        return _dtmf(await self.command(f"WAIT FOR DIGIT {int(timeout_ms)}"))

    async def say_digits(self, digits: str, escape: str = "") -> str | None:
        text = _digits(digits, "digits to say")
        reply = await self.command(f'SAY DIGITS {text} "{_digits(escape, "escape digits")}"')
        return _dtmf(reply)

    async def exec(self, app: str, *args: str) -> int:
        """Run a dialplan application; its result. AgiCommandError if it does not exist."""
        line = f"EXEC {_word(app, 'application')}"
        if args:
            line += " " + quote(",".join(args))
        reply = await self.command(line)
        if reply.result == "-2":
            raise AgiCommandError(f"no such application {app!r}", reply)
        return reply.number()

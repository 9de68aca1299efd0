"""One FastAGI session: the request Asterisk sent, and typed commands over the socket.

The wire (checked against Asterisk 22, see fixtures/asterisk/agi-*.txt): bare `\\n` both ways;
replies are `200 result=N [(data)] [endpos=N]`, `510 ...`, a multi-line `520-...` block ending in
`520 End of proper usage.`, `511 Command Not Permitted on a dead channel...`; and an unsolicited
`HANGUP` line after a caller hang-up and at the end of every session.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

from ccrouter.pbx.agi.protocol import (
    AgiArgumentError,
    AgiCommandError,
    AgiError,
    AgiHangup,
    AgiProtocolError,
    AgiReply,
    AgiRequest,
    AgiTimeoutError,
    LineReader,
    LineWriter,
    parse_env,
    parse_kwarg,
    parse_reply,
    read_reply,
)

__all__ = [  # the wire values are re-exported: callers import them from here
    "AgiArgumentError",
    "AgiCommandError",
    "AgiError",
    "AgiHangup",
    "AgiProtocolError",
    "AgiReply",
    "AgiRequest",
    "AgiSession",
    "AgiTimeoutError",
    "parse_env",
    "parse_kwarg",
    "parse_reply",
    "quote",
    "read_reply",
]

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


def _check_line(text: str, what: str) -> None:
    if "\n" in text or "\r" in text or "\0" in text:
        raise AgiArgumentError(f"{what} must not contain a line break or NUL: {text[:80]!r}")


_QUOTE = frozenset(' \t"\\\n\r\0')
_MSET_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.+@:/*#")
"""Characters a name or value may hold to travel in one `EXEC MSet` unchanged: no separator
(`,` `|` `=`), quote, backslash, bracket, parenthesis, `$` or space (app.c's argument splitter
treats those specially; MSet strips quotes)."""
_PLAIN = "[" + re.escape("".join(sorted(_MSET_SAFE))) + "]+"
_MSET_PAIRS = re.compile(f"{_PLAIN}={_PLAIN}(?:,{_PLAIN}={_PLAIN})*")
"""`NAME=value,NAME=value...`, every name and value non-empty and made of `_MSET_SAFE`."""
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
        reader: LineReader,
        writer: LineWriter,
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
            data = ",".join([f"{n}={v}" for n, v in pairs])
            # one C scan: every name and value non-empty and plain (',' and '=' are not plain,
            # so the pairs cannot run into each other)
            if len(data) <= _MSET_MAX_BYTES and _MSET_PAIRS.fullmatch(data):
                reply = await self.command(f"EXEC MSet {data}")
                if reply.result == "-2":
                    raise AgiCommandError("no such application 'MSet'", reply)
                return
        for name, _ in pairs:  # every name checked before anything is sent
            _word(name, "variable name")
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

"""FastAGI on the wire: the `agi_*` header block, replies (`200 result=...`, `510`, the
multi-line `520-` usage block, `511` on a dead channel, the unsolicited `HANGUP` line), the
request and reply values and the typed errors. `session.py` builds commands on top of it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import repeat
from typing import Protocol

_MAX_REPLY_BYTES = 1 << 16
"""A reply (520 usage blocks included) larger than this is not Asterisk talking."""

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


class LineReader(Protocol):
    """Where replies come from: asyncio.StreamReader's `readline` contract (the line with its
    `\\n`; the rest, or b"", at EOF; ValueError for an over-long line)."""

    async def readline(self) -> bytes: ...


class LineWriter(Protocol):
    def write(self, data: bytes) -> None: ...


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


async def read_reply(reader: LineReader) -> tuple[AgiReply, bool]:
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


async def _read_usage(reader: LineReader, first: str) -> AgiReply:
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


async def _readline(reader: LineReader) -> str:
    try:
        raw = await reader.readline()
    except ValueError:  # LimitOverrunError surfaces as ValueError from readline()
        raise AgiProtocolError("reply line longer than the stream limit") from None
    if not raw.endswith(b"\n"):
        raise AgiHangup("Asterisk closed the FastAGI socket")
    return raw[:-1].decode("utf-8", "replace")


# --- quoting ----------------------------------------------------------------------------



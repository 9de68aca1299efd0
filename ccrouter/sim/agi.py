"""The FastAGI client side: connect to ccrouter like Asterisk does and answer like res_agi.c.

Lines end with a bare `\\n`. The environment block has the keys and order of
`agi-route-session.txt`. When the channel hangs up during the session, a prompt being played
answers `200 result=-1 endpos=N` (or `200 result=-1`), then the unsolicited `HANGUP` line is
sent, and later channel commands answer `511 ...` while GET VARIABLE/NOOP/... still work.
When ccrouter closes (or half-closes) the socket, `HANGUP` is sent if it was not yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Sequence
from typing import Protocol

import structlog

from ccrouter.dialplan import VAR_AGI_NEXT, VAR_AGI_ROUND

log = structlog.get_logger(__name__)

DEAD = b"511 Command Not Permitted on a dead channel or intercept routine\n"
UNKNOWN = b"510 Invalid or unknown command\n"
ENDPOS_FULL = 3404
ENDPOS_CUT = 4000
STREAM_USAGE = (
    "Send the given file, allowing playback to be interrupted by the given digits, if any. "
    "Returns <literal>0</literal> if playback completes without a digit being pressed, or the "
    "ASCII numerical value of the digit if one was pressed, or <literal>-1</literal> on error "
    "or if the channel was disconnected. If musiconhold is playing before calling stream file "
    "it will be automatically stopped and will not be restarted after completion.\n"
    "It sets the following channel variables upon completion:\n"
    "<variable>PLAYBACKSTATUS</variable>: The status of the playback attempt as a text string.\n"
    "    <value>SUCCESS</value>\n"
    "    <value>FAILED</value>"
)
DEAD_OK = {"GET VARIABLE", "GET FULL VARIABLE", "NOOP", "SET VARIABLE", "VERBOSE", "EXEC",
           "DATABASE GET", "DATABASE PUT", "DATABASE DEL"}
KNOWN_APPS = {"playback", "set", "mset", "wait", "noop", "verbose", "background", "log"}


class Keypad:
    """The caller's keypresses: one script entry per prompt that listens (see package doc)."""

    def __init__(self, script: Sequence[str]) -> None:
        self._script = list(script)
        self._pending = ""

    def push(self, digits: str) -> None:
        self._pending += digits

    def _fill(self) -> str:
        if not self._pending and self._script:
            self._pending = self._script.pop(0)
        return self._pending

    def interrupt(self, escape: str) -> str | None:
        """A digit in `escape` pressed during a prompt; other digits are lost."""
        pending = self._fill()
        for i, d in enumerate(pending):
            if d in escape:
                self._pending = pending[i + 1:]
                return d
        self._pending = ""
        return None

    def read(self, max_digits: int) -> tuple[str, bool]:
        """GET DATA: (digits, timed_out); `#` ends input and is not returned."""
        pending, got = self._fill(), ""
        for i, d in enumerate(pending):
            if d == "#":
                self._pending = pending[i + 1:]
                return got, False
            got += d
            if max_digits and len(got) >= max_digits:
                self._pending = pending[i + 1:]
                return got, False
        self._pending = ""
        return got, True

    def one(self) -> str | None:
        pending = self._fill()
        if not pending:
            return None
        self._pending = pending[1:]
        return pending[0]


class AgiChannel(Protocol):
    """What the session needs from the call it runs on."""

    dead: asyncio.Event
    keypad: Keypad

    def agi_env(self) -> list[tuple[str, str]]: ...
    def get_var(self, name: str) -> str | None: ...
    def set_var(self, name: str, value: str) -> None: ...
    def expand(self, expr: str) -> str: ...
    def exec_app(self, app: str, data: str) -> int: ...
    def agi_hangup(self) -> None: ...
    def agi_command(self, command: str, code: int) -> None: ...
    def db(self) -> dict[tuple[str, str], str]: ...
    def missing_sound(self, name: str) -> bool: ...


_BLANKS = re.compile(r"[ \t]+")


def parse_args(line: str) -> list[str]:
    """res_agi `parse_args`: whitespace-separated, "double quotes" group, backslash escapes."""
    if '"' not in line and "\\" not in line:  # no quotes, no escapes: the runs of non-blanks
        return [a for a in _BLANKS.split(line) if a]
    args: list[str] = []
    cur, quoted, escaped, have = "", False, False, False
    for c in line:
        if escaped:
            cur, escaped, have = cur + c, False, True
        elif c == "\\":
            escaped = True
        elif c == '"':
            quoted, have = not quoted, True
        elif c in " \t" and not quoted:
            if have:
                args.append(cur)
            cur, have = "", False
        else:
            cur, have = cur + c, True
    if have:
        args.append(cur)
    return args


def usage(text: str) -> bytes:
    head = "520-Invalid command syntax.  Proper usage follows:"
    return f"{head}\n{text}\n520 End of proper usage.\n".encode()


class AgiSession:
    def __init__(self, chan: AgiChannel, prompt_delay_s: float, timeout_s: float) -> None:
        self.chan = chan
        self.prompt_delay = prompt_delay_s  # real seconds a prompt plays (0 = instant)
        self.timeout = timeout_s
        self._writer: asyncio.StreamWriter | None = None
        self._busy = False
        self.hangup_sent = False

    def channel_hungup(self) -> None:
        """The call hung up: tell ccrouter now unless a running prompt will tell it."""
        if not self._busy:
            self._send_hangup()

    def _send_hangup(self) -> None:
        if self._writer is not None and not self.hangup_sent and not self._writer.is_closing():
            self.hangup_sent = True
            self._writer.write(b"HANGUP\n")

    async def run(self, host: str, port: int, script: str, args: Sequence[str]) -> str:
        """Run one FastAGI session; return AGISTATUS (SUCCESS, FAILURE or HANGUP)."""
        try:
            async with asyncio.timeout(self.timeout):  # (wait_for made a task per await)
                reader, writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError) as exc:
            log.warning("sim.agi.connect_failed", host=host, port=port, error=str(exc))
            return "FAILURE"
        self._writer = writer
        status = "SUCCESS"
        try:
            env = self.chan.agi_env()
            url = f"agi://{host}:{port}/{script}"
            lines = [("agi_network", "yes"), ("agi_network_script", script), ("agi_request", url)]
            lines += env + [(f"agi_arg_{i}", a) for i, a in enumerate(args, start=1)]
            writer.write("".join([f"{k}: {v}\n" for k, v in lines]).encode() + b"\n")
            while True:
                try:
                    async with asyncio.timeout(self.timeout):
                        raw = await reader.readline()
                except TimeoutError:
                    log.warning("sim.agi.no_answer", timeout_s=self.timeout)
                    status = "FAILURE"
                    break
                if not raw:
                    break
                line = raw.decode("utf-8", "replace").strip()
                if line:
                    self._busy = True
                    try:
                        reply = await self._execute(line)
                    finally:
                        self._busy = False
                    if not writer.is_closing():
                        writer.write(reply)
                    if self.chan.dead.is_set():
                        self._send_hangup()
            self._send_hangup()
        except ConnectionError:
            pass
        finally:
            self._writer = None
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
        if self.chan.dead.is_set() and status == "SUCCESS":
            status = "HANGUP"
        return status

    async def _prompt(self) -> bool:
        """Play a prompt for `prompt_delay`; True when the caller hung up meanwhile."""
        if self.chan.dead.is_set():
            return True
        if self.prompt_delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.chan.dead.wait(), self.prompt_delay)
        return self.chan.dead.is_set()

    async def _execute(self, line: str) -> bytes:
        argv = parse_args(line)
        words = [a.upper() for a in argv[:3]]
        name = " ".join(words[:3]) if words[:3] == ["GET", "FULL", "VARIABLE"] else (
            " ".join(words[:2]) if len(words) > 1 and " ".join(words[:2]) in _TWO_WORD
            else words[0] if words else "")
        if name not in _COMMANDS:
            self.chan.agi_command(line, 510)
            return UNKNOWN
        if self.chan.dead.is_set() and name not in DEAD_OK:
            self.chan.agi_command(line, 511)
            return DEAD
        reply = await _COMMANDS[name](self, argv)
        self.chan.agi_command(line, int(reply[:3]))
        return reply

    # -- commands ------------------------------------------------------------------------
    async def c_answer(self, argv: list[str]) -> bytes:
        return b"200 result=0\n"

    async def c_hangup(self, argv: list[str]) -> bytes:
        self.chan.agi_hangup()
        return b"200 result=1\n"

    async def c_noop(self, argv: list[str]) -> bytes:
        return b"200 result=0\n"

    async def c_verbose(self, argv: list[str]) -> bytes:
        return b"200 result=1\n" if len(argv) >= 2 else usage("Usage: VERBOSE <message> <level>")

    async def c_status(self, argv: list[str]) -> bytes:
        return b"200 result=6\n"

    async def c_set_variable(self, argv: list[str]) -> bytes:
        if len(argv) != 4:
            return usage("Usage: SET VARIABLE <variablename> <value>")
        self.chan.set_var(argv[2], argv[3])
        return b"200 result=1\n"

    async def c_get_variable(self, argv: list[str]) -> bytes:
        if len(argv) != 3:
            return usage("Usage: GET VARIABLE <variablename>")
        value = self.chan.get_var(argv[2])
        return b"200 result=0\n" if value is None else f"200 result=1 ({value})\n".encode()

    async def c_get_full(self, argv: list[str]) -> bytes:
        if len(argv) < 4:
            return usage("Usage: GET FULL VARIABLE <variablename> [<channel name>]")
        return f"200 result=1 ({self.chan.expand(argv[3])})\n".encode()

    async def c_stream(self, argv: list[str]) -> bytes:
        if len(argv) not in (4, 5):
            return usage(STREAM_USAGE)
        if self.chan.missing_sound(argv[2]):
            return b"200 result=-1 endpos=0\n"
        digit = self.chan.keypad.interrupt(argv[3]) if argv[3] else None
        if digit is not None:
            return f"200 result={ord(digit)} endpos={ENDPOS_CUT}\n".encode()
        if await self._prompt():
            return f"200 result=-1 endpos={ENDPOS_CUT * 5}\n".encode()
        return f"200 result=0 endpos={ENDPOS_FULL}\n".encode()

    async def c_get_option(self, argv: list[str]) -> bytes:
        if len(argv) not in (4, 5):
            return usage("Usage: GET OPTION <filename> <escape_digits> [<timeout>]")
        reply = await self.c_stream(argv[:4])
        if reply.startswith(b"200 result=0 ") and argv[3]:
            digit = self.chan.keypad.interrupt(argv[3])
            if digit is not None:
                return f"200 result={ord(digit)} endpos={ENDPOS_FULL}\n".encode()
        return reply

    async def c_get_data(self, argv: list[str]) -> bytes:
        if len(argv) < 3:
            return usage("Usage: GET DATA <file to be streamed> [<timeout>] [<maxdigits>]")
        max_digits = int(argv[4]) if len(argv) > 4 and argv[4].isdigit() else 0
        digits, timed_out = self.chan.keypad.read(max_digits)
        if timed_out and await self._prompt():
            return b"200 result=-1\n"
        return f"200 result={digits}{' (timeout)' if timed_out else ''}\n".encode()

    async def c_wait_digit(self, argv: list[str]) -> bytes:
        if len(argv) != 4:
            return usage("Usage: WAIT FOR DIGIT <timeout>")
        digit = self.chan.keypad.one()
        if digit is None and await self._prompt():
            return b"200 result=-1\n"
        return f"200 result={ord(digit) if digit else 0}\n".encode()

    async def c_say(self, argv: list[str]) -> bytes:
        if len(argv) < 4:
            return usage(f"Usage: SAY {argv[1].upper() if len(argv) > 1 else ''} <what> <escape>")
        digit = self.chan.keypad.interrupt(argv[3]) if argv[3] else None
        if digit is None and await self._prompt():
            return b"200 result=-1\n"
        return f"200 result={ord(digit) if digit else 0}\n".encode()

    async def c_exec(self, argv: list[str]) -> bytes:
        if len(argv) < 2:
            return usage("Usage: EXEC <application> <options>")
        return f"200 result={self.chan.exec_app(argv[1], ' '.join(argv[2:]))}\n".encode()

    async def c_database(self, argv: list[str]) -> bytes:
        op = argv[1].upper()
        db = self.chan.db()
        if op == "PUT" and len(argv) == 5:
            db[(argv[2], argv[3])] = argv[4]
            return b"200 result=1\n"
        if op == "GET" and len(argv) == 4:
            value = db.get((argv[2], argv[3]))
            return b"200 result=0\n" if value is None else f"200 result=1 ({value})\n".encode()
        if op == "DEL" and len(argv) == 4:
            return b"200 result=1\n" if db.pop((argv[2], argv[3]), None) is not None else (
                b"200 result=0\n")
        return usage(f"Usage: DATABASE {op} <family> <key> [<value>]")

    async def c_set_other(self, argv: list[str]) -> bytes:
        return b"200 result=0\n"


_TWO_WORD = {"CHANNEL STATUS", "SET VARIABLE", "GET VARIABLE", "STREAM FILE", "GET OPTION",
             "GET DATA", "SAY DIGITS", "SAY NUMBER", "SAY ALPHA", "DATABASE GET", "DATABASE PUT",
             "DATABASE DEL", "SET CONTEXT", "SET EXTENSION", "SET PRIORITY", "SET CALLERID",
             "SET MUSIC", "WAIT FOR"}
_COMMANDS = {
    "ANSWER": AgiSession.c_answer, "HANGUP": AgiSession.c_hangup, "NOOP": AgiSession.c_noop,
    "VERBOSE": AgiSession.c_verbose, "CHANNEL STATUS": AgiSession.c_status,
    "SET VARIABLE": AgiSession.c_set_variable, "GET VARIABLE": AgiSession.c_get_variable,
    "GET FULL VARIABLE": AgiSession.c_get_full, "STREAM FILE": AgiSession.c_stream,
    "GET OPTION": AgiSession.c_get_option, "GET DATA": AgiSession.c_get_data,
    "WAIT FOR": AgiSession.c_wait_digit, "SAY DIGITS": AgiSession.c_say,
    "SAY NUMBER": AgiSession.c_say, "SAY ALPHA": AgiSession.c_say, "EXEC": AgiSession.c_exec,
    "DATABASE GET": AgiSession.c_database, "DATABASE PUT": AgiSession.c_database,
    "DATABASE DEL": AgiSession.c_database, "SET CONTEXT": AgiSession.c_set_other,
    "SET EXTENSION": AgiSession.c_set_other, "SET PRIORITY": AgiSession.c_set_other,
    "SET CALLERID": AgiSession.c_set_other, "SET MUSIC": AgiSession.c_set_other,
}


async def run_with_failover(addresses: Sequence[tuple[str, int]],
                            session: Callable[[], AgiSession], script: str, args: Sequence[str],
                            tried: Callable[[str], None]) -> str:  # fmt: skip
    """AGI(agi://host:port/script,args) as the generated dialplan runs it: AGISTATUS. With
    several addresses (several ccrouter instances: the ccrouter-agi subroutine) each is tried
    in turn, a fresh `session()` each, while the status is FAILURE or the instance set
    CCROUTER_AGI_NEXT (cleared before each), and then all once more with CCROUTER_AGI_ROUND=2;
    `tried(url)` before each."""
    status = "FAILURE"
    for round_ in ("1", "2") if len(addresses) > 1 else ("",):
        for host, port in addresses:
            tried(",".join((f"agi://{host}:{port}/{script}", *args)))
            one = session()
            if round_:
                one.chan.set_var(VAR_AGI_ROUND, round_)
                one.chan.set_var(VAR_AGI_NEXT, "")
            status = await one.run(host, port, script, args)
            if status != "FAILURE" and not one.chan.get_var(VAR_AGI_NEXT):
                return status
    return status

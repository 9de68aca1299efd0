"""The AMI server side: banner, Login/Logoff, event filters, per-connection event fan-out.

Behaviour follows Asterisk 22 `main/manager.c`: actions before Login answer `Permission
denied`; a failed Login answers after a delay and closes the socket; `Filter` (Operation: Add)
takes the legacy regex form (`!` excludes; matched against the whole event text) and the
`MatchCriteria: name(X),header(Y),method(Z),action(include|exclude)` form; filters apply to
events only, never to action responses or their list items. Other actions go to `handler`.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from . import events as ev

log = structlog.get_logger(__name__)

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
RECORD_CAP = 4 * 1024 * 1024
"""Bytes kept per connection for `sent_bytes()`; later bytes are sent but not kept."""


class Message:
    """One AMI request: headers in order; lookups are case-insensitive, first value wins."""

    __slots__ = ("_first", "pairs")

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs
        self._first: dict[str, str] = {}
        for key, value in pairs:
            self._first.setdefault(key.lower(), value)

    def get(self, name: str) -> str:
        return self._first.get(name.lower(), "")

    def all(self, name: str) -> list[str]:
        low = name.lower()
        return [v for k, v in self.pairs if k.lower() == low]

    @property
    def action(self) -> str:
        return self.get("Action")


@dataclass(frozen=True, slots=True)
class EventFilter:
    exclude: bool
    event_name: str | None
    header: str | None
    method: str  # regex | exact | starts_with | ends_with | contains | none
    pattern: str
    regex: re.Pattern[str] | None

    def matches(self, name: str, text: str) -> bool:
        if self.event_name is not None and self.event_name != name:
            return False
        if self.header is None:
            return self._match(text)
        for line in text.split("\r\n"):
            if line.startswith(self.header):
                value = line[len(self.header):].lstrip(" \t")
                if value and self._match(value):
                    return True
        return False

    def _match(self, data: str) -> bool:
        m = self.method
        if m == "regex":
            assert self.regex is not None
            return self.regex.search(data) is not None
        if m == "exact":
            return data == self.pattern
        if m == "starts_with":
            return data.startswith(self.pattern)
        if m == "ends_with":
            return data.endswith(self.pattern)
        if m == "contains":
            return self.pattern in data
        return True  # none


class FilterError(ValueError):
    """`kind` is the manager.c failure: "format" or "compile"."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


_METHODS = {"regex", "exact", "starts_with", "ends_with", "contains", "none"}


def parse_filter(criteria: str, pattern: str) -> EventFilter:
    """`criteria`: the MatchCriteria header ("" = legacy filter). Mirrors manager_add_filter."""
    exclude = pattern.startswith("!")
    if exclude:
        pattern = pattern[1:]
    method, name, header = "regex", None, None
    if not criteria:
        if not pattern:
            raise FilterError("format", "legacy filter with no filter pattern")
    else:
        method, found = "none", False
        for option in (o for o in re.split(r"[ ,)]+", criteria) if o):
            key, _, value = option.partition("(")
            value = value.strip()
            if key.startswith("action") and value in ("include", "exclude"):
                exclude = value == "exclude"
            elif key.startswith("name") and value:
                name = value
            elif key.startswith("header") and value:
                header = value if value.endswith(":") else value + ":"
            elif key.startswith("method") and value in _METHODS:
                method = value
            else:
                raise FilterError("format", f"filter option {option!r} is unknown or empty")
            found = True
        if not found:
            raise FilterError("format", "no action, name, header or method option")
        if bool(pattern) == (method == "none"):
            raise FilterError("format", f"method {method!r} does not fit pattern {pattern!r}")
    regex = None
    if pattern and method == "regex":
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise FilterError("compile", str(exc)) from exc
    return EventFilter(exclude, name, header, method, pattern, regex)


class AmiSession:
    """One AMI connection."""

    def __init__(self, index: int, writer: asyncio.StreamWriter, server: AmiServer) -> None:
        self.index = index
        self.writer = writer
        self.server = server
        self.authenticated = False
        self.username = ""
        self.event_classes: frozenset[str] | None = None  # None = all
        self.includes: list[EventFilter] = []
        self.excludes: list[EventFilter] = []
        self.record = bytearray()
        self.closed = False
        self._out = bytearray()
        self._flush_handle: asyncio.Handle | None = None

    # -- writing -------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.closed or self.server.half_open:
            return
        if len(self.record) < RECORD_CAP:
            self.record += data
        self._out += data  # one socket write per loop iteration, not one per event
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._flush_handle = None
        # is_closing: the peer went away (uvloop raises on a write to a closed transport).
        if self._out and not self.closed and not self.writer.is_closing():
            self.writer.write(bytes(self._out))
        self._out.clear()

    def respond(self, msg: Message, response: str, message: str | None, extra: str = "") -> None:
        aid = msg.get("ActionID")
        head = f"Response: {response}\r\n" + (f"ActionID: {aid}\r\n" if aid else "")
        body = f"Message: {message}\r\n" if message is not None else ""
        self.write(f"{head}{body}{extra}\r\n".encode())

    def ok(self, msg: Message, message: str | None) -> None:
        self.respond(msg, "Success", message)

    def error(self, msg: Message, message: str) -> None:
        self.respond(msg, "Error", message)

    def list_start(self, msg: Message, message: str) -> None:
        aid = msg.get("ActionID")
        idline = f"ActionID: {aid}\r\n" if aid else ""
        self.write(f"Response: Success\r\n{idline}EventList: start\r\nMessage: {message}\r\n\r\n"
                   .encode())

    def list_item(self, msg: Message, event: str, body: str, id_first: bool = False) -> None:
        aid = msg.get("ActionID")
        idline = f"ActionID: {aid}\r\n" if aid else ""
        if id_first:
            self.write(f"Event: {event}\r\n{idline}{body}\r\n".encode())
        else:
            self.write(f"Event: {event}\r\n{body}{idline}\r\n".encode())

    def list_complete(self, msg: Message, event: str, count: int) -> None:
        aid = msg.get("ActionID")
        idline = f"ActionID: {aid}\r\n" if aid else ""
        self.write(f"Event: {event}\r\n{idline}EventList: Complete\r\nListItems: {count}\r\n\r\n"
                   .encode())

    # -- events --------------------------------------------------------------------------
    def may_want(self, name: str) -> bool:
        """Cheap pre-check before an event is formatted (name-only include filters)."""
        if not self.includes or self.excludes:
            return True
        return any(f.event_name is None or f.event_name == name for f in self.includes)

    def should_send(self, name: str, text: str) -> bool:
        """manager.c `should_send_event`."""
        if self.includes and not any(f.matches(name, text) for f in self.includes):
            return False
        return not any(f.matches(name, text) for f in self.excludes)

    def close(self) -> None:
        if not self.closed:
            if self._flush_handle is not None:
                self._flush_handle.cancel()
            self.flush()
            self.closed = True
            self.writer.close()


Handler = Callable[[AmiSession, Message], Awaitable[None]]


class AmiServer:
    """Accepts AMI connections; `emit()` fans an event out to every subscribed session."""

    def __init__(
        self, username: str, secret: str, handler: Handler, login_fail_delay_s: float,
        uptime: Callable[[], int],
    ) -> None:
        self._username = username
        self._secret = secret
        self._handler = handler
        self._fail_delay = login_fail_delay_s
        self._uptime = uptime
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.sessions: list[AmiSession] = []  # every connection ever accepted, by index
        self._live: list[AmiSession] = []  # logged in with events on
        self._wanted: dict[str, bool] = {}
        self.half_open = False
        self.booted = True
        """False while the PBX boots: a Login gets no FullyBooted (manager.c `ast_fully_booted`)."""
        self.shutting_down = False
        """True while the PBX shuts down: every action answers `Asterisk is shutting down`."""
        self.port = 0
        self.host = "127.0.0.1"

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, host, port)
        self.host = host
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def close(self) -> None:
        await self.stop_listening()
        self.drop_all()
        tasks = list(self._tasks)
        if tasks:  # closed sockets end the readers; cancel only what is stuck
            _, stuck = await asyncio.wait(tasks, timeout=1.0)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)

    def drop_all(self) -> None:
        for s in self.sessions:
            s.close()
        self._live.clear()
        self._wanted.clear()

    def set_half_open(self, on: bool) -> None:
        self.half_open = on
        for s in self.sessions:
            if s.closed:
                continue
            transport = s.writer.transport
            if on:
                transport.pause_reading()  # type: ignore[attr-defined]
            else:
                transport.resume_reading()  # type: ignore[attr-defined]

    # -- events --------------------------------------------------------------------------
    def wants(self, name: str) -> bool:
        hit = self._wanted.get(name)
        if hit is None:
            hit = self._wanted[name] = any(s.may_want(name) for s in self._live)
        return hit

    def emit(self, name: str, priv: str, body: str) -> None:
        if not self._live or self.half_open:
            return
        text = f"Event: {name}\r\nPrivilege: {priv}\r\n{body}\r\n"
        data: bytes | None = None
        category = priv.split(",", 1)[0]
        for s in self._live:
            if s.event_classes is not None and category not in s.event_classes:
                continue
            if (s.includes or s.excludes) and not s.should_send(name, text):
                continue
            if data is None:
                data = text.encode()
            s.write(data)

    def _subscribed_changed(self) -> None:
        self._live = [s for s in self.sessions
                      if s.authenticated and not s.closed and s.event_classes != frozenset()]
        self._wanted.clear()

    # -- connection ----------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        session = AmiSession(len(self.sessions), writer, self)
        self.sessions.append(session)
        if self.half_open:
            writer.transport.pause_reading()  # type: ignore[attr-defined]
        try:
            session.write(BANNER)
            await self._read_loop(session, reader)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            session.close()
            self._subscribed_changed()

    async def _read_loop(self, session: AmiSession, reader: asyncio.StreamReader) -> None:
        pairs: list[tuple[str, str]] = []
        while not session.closed:
            raw = await reader.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line:
                key, _, value = line.partition(":")
                pairs.append((key.strip(), value.strip()))
                continue
            if not pairs:
                continue
            msg, pairs = Message(pairs), []
            if not await self._dispatch(session, msg):
                return

    async def _dispatch(self, session: AmiSession, msg: Message) -> bool:
        """Run one action; False ends the connection."""
        action = msg.action.lower()
        if not action:
            session.error(msg, "Missing action in request")
            return True
        if self.shutting_down:  # manager.c process_message: before the Login check
            log.error("sim.ami.shutting_down", action=msg.action)
            session.error(msg, "Asterisk is shutting down")
            return True
        if action == "logoff":
            session.respond(msg, "Goodbye", "Thanks for all the fish.")
            return False
        if not session.authenticated:
            if action != "login":
                session.error(msg, "Permission denied")
                return True
            return await self._login(session, msg)
        if action == "login":
            session.ok(msg, "Already authenticated")
        elif action == "filter":
            self._filter(session, msg)
        elif action == "events":
            self._set_events(session, msg.get("EventMask"))
            on = "On" if session.event_classes != frozenset() else "Off"
            session.respond(msg, "Success", None, f"Events: {on}\r\n")
        else:
            await self._handler(session, msg)
        return True

    async def _login(self, session: AmiSession, msg: Message) -> bool:
        if msg.get("Username") != self._username or msg.get("Secret") != self._secret:
            log.info("sim.ami.login_failed", username=msg.get("Username"))
            await asyncio.sleep(self._fail_delay)
            session.error(msg, "Authentication failed")
            return False
        session.authenticated = True
        session.username = self._username
        self._set_events(session, msg.get("Events") or "on")
        session.ok(msg, "Authentication accepted")
        if self.booted and (session.event_classes is None or "system" in session.event_classes):
            uptime = self._uptime()
            text = f"Event: FullyBooted\r\nPrivilege: {ev.SYSTEM}\r\n{ev.fully_booted(uptime)}\r\n"
            if session.should_send("FullyBooted", text):
                session.write(text.encode())
        if session.event_classes is None or "security" in session.event_classes:
            sock = session.writer.get_extra_info("sockname") or ("127.0.0.1", 0)
            peer = session.writer.get_extra_info("peername") or ("127.0.0.1", 0)
            now = time.time()
            tv = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + (
                f".{int(now * 1000) % 1000:03d}+0000")
            body = ev.successful_auth(
                self._username, hex(id(session)), f"IPV4/TCP/{sock[0]}/{sock[1]}",
                f"IPV4/TCP/{peer[0]}/{peer[1]}", tv)
            session.write(f"Event: SuccessfulAuth\r\nPrivilege: {ev.SECURITY}\r\n{body}\r\n"
                          .encode())
        self._subscribed_changed()
        return True

    def _set_events(self, session: AmiSession, value: str) -> None:
        v = value.strip().lower()
        if v in ("on", "yes", "true", "1", "all"):
            session.event_classes = None
        elif v in ("off", "no", "false", "0", ""):
            session.event_classes = frozenset()
        else:
            session.event_classes = frozenset(p.strip() for p in v.split(",") if p.strip())
        self._subscribed_changed()

    def _filter(self, session: AmiSession, msg: Message) -> None:
        if msg.get("Operation").lower() != "add":
            session.error(msg, "Unknown operation")
            return
        try:
            flt = parse_filter(msg.get("MatchCriteria"), msg.get("Filter"))
        except FilterError as exc:
            log.info("sim.ami.filter_rejected", reason=str(exc))
            if exc.kind == "compile":
                session.error(msg, "Filter did not compile.  Check the syntax of the filter given.")
            else:
                session.error(
                    msg, "Filter was formatted incorrectly.  Check the syntax of the filter given.")
            return
        (session.excludes if flt.exclude else session.includes).append(flt)
        self._wanted.clear()
        session.ok(msg, "Success")

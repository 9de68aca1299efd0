"""The AMI server side: banner, Login/Logoff, Events, Filter, per-connection event fan-out.

Behaviour follows Asterisk 22 `main/manager.c`: actions before Login answer `Permission
denied`; a failed Login answers after a delay and closes the socket; `Filter` (Operation: Add)
adds an event filter (forms: `ami_filter.py`); filters apply to events only, never to action
responses or their list items. Other actions go to `handler`. One connection's state and
writing: `ami_session.py`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog

from . import events as ev
from .ami_filter import FilterError, parse_filter
from .ami_session import AmiSession, Message

log = structlog.get_logger(__name__)

BANNER = b"Asterisk Call Manager/11.0.0\r\n"


Handler = Callable[[AmiSession, Message], Awaitable[None]]

ACTION_CLASSES: dict[str, frozenset[str]] = {
    "filter": frozenset({"system"}),
    "command": frozenset({"command"}),
    "originate": frozenset({"originate", "call"}),
    "devicestatelist": frozenset({"call", "reporting"}),
    "getconfig": frozenset({"system", "config"}),
    "coresettings": frozenset({"system", "reporting"}),
    "corestatus": frozenset({"system", "reporting"}),
}
"""The write classes manager.c and res_manager_devicestate.c register these actions with; a
user with none of an action's classes gets `Permission denied` (Ping needs none)."""


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
        self.write_classes: frozenset[str] | None = None
        """manager.conf `write =` of the user (None: all)."""

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

    @property
    def logged_in(self) -> int:
        """How many connections are logged in now with events on."""
        return len(self._live)

    def live_sessions(self) -> list[AmiSession]:
        """The connections logged in now with events on, oldest first."""
        return list(self._live)

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
        session.actions.append(msg.action)
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
        needs = ACTION_CLASSES.get(action)
        if needs is not None and self.write_classes is not None and not (
                needs & self.write_classes):
            log.info("sim.ami.permission_denied", action=msg.action)
            session.error(msg, "Permission denied")
        elif action == "login":
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

"""The AMI connection: panoramisk's Manager, wrapped so that it can be trusted.

panoramisk 1.4 reconnects on a fixed timer, stays silent on a failed login, replays pending
actions after a reconnect (an Originate could be dialled twice), never times an action out, and
its Ping cannot notice a half-open socket. Here one supervisor task owns the connection:
connect -> Login (failure reported with Asterisk's message) -> event Filter -> `on_connected`
(the resync) -> a watchdog Ping with a timeout; any failure closes the socket and reconnects
with capped exponential backoff. Every action has a timeout.

Right after a restart Asterisk accepts logins while it still boots: app_queue's actions answer
`Invalid/unknown command` until it is fully booted (and every action answers `Asterisk is
shutting down` while it stops). A booted Asterisk pushes `FullyBooted` right after the Login
response, a booting one only once it is done: without it the resync waits for it (at most
`BOOT_RETRY_S`, then tries anyway), and a resync refused because the PBX is not ready waits and
runs again, on the same connection. `pbx_ready` is True from a successful resync until the
connection drops or Asterisk announces `Shutdown`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import structlog
from panoramisk import Manager
from panoramisk.message import Message

from ccrouter.config import AmiSettings
from ccrouter.dialplan import AMI_EVENTS, AMI_VARIABLES
from ccrouter.pbx.ami.protocol import AmiMessage, EventSink, FastAMIProtocol

log = structlog.get_logger(__name__)


class AmiError(Exception):
    pass


class AmiNotConnected(AmiError):
    pass


class AmiTimeout(AmiError):
    pass


class AmiLoginFailed(AmiError):
    pass


class AmiActionFailed(AmiError):
    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"AMI {action} failed: {message}")
        self.action, self.message = action, message



SHUTTING_DOWN = "Asterisk is shutting down"
"""manager.c `process_message`: every action's answer once a shutdown/restart began."""
UNKNOWN_COMMAND = "Invalid/unknown command"
"""An action no loaded module registers: app_queue's, while Asterisk still boots."""

BOOT_RETRY_S = 5.0
"""Longest wait for `FullyBooted` before the resync is tried (again): a user without the
`system` read class never gets the event."""


def event_filter(names: Sequence[str], variables: Sequence[str] = AMI_VARIABLES) -> str:
    """One legacy-form AMI filter regex admitting exactly these event names (`VarSet` only for
    the `variables` named).

    Matched by Asterisk (POSIX ERE, compiled without REG_NEWLINE: `.` spans lines) against the
    whole event text `Event: Name\\r\\n...`; the trailing `[^A-Za-z]` stops `Hangup` from also
    admitting `HangupRequest`.
    """
    plain = sorted(n for n in names if n != "VarSet")
    rx = "Event: (" + "|".join(plain) + ")[^A-Za-z]"
    if "VarSet" in names and variables:
        rx += "|Event: VarSet[^A-Za-z].*Variable: (" + "|".join(variables) + ")[^A-Za-z0-9_]"
    return rx


class _Manager(Manager):  # type: ignore[misc]  # panoramisk has no type hints
    """panoramisk's Manager minus its own reconnect timer, pinger, login and action replay."""

    def __init__(self, on_lost: Callable[[], None], sink: EventSink, **config: Any) -> None:
        super().__init__(**config)
        # No event patterns: panoramisk's own FullyBooted -> send_awaiting_actions replay never
        # matches (events go to the sink, see `connection_made`).
        self.patterns.clear()
        self._on_lost = on_lost
        self._sink = sink

    def connection_made(self, f: asyncio.Future[Any]) -> None:
        if f.cancelled() or f.exception() is not None:
            return  # the supervisor sees the error from the awaited task
        _transport, protocol = f.result()
        self.protocol = protocol
        protocol.factory = self
        protocol.log = log
        protocol.config = self.config
        protocol.encoding = self.encoding = "utf8"
        protocol.sink = self._sink
        self.responses = protocol.responses = {}
        self._connected = True

    def connection_lost(self, exc: Exception | None) -> None:
        self._connected = False
        self._on_lost()

    def close(self) -> None:
        if getattr(self, "protocol", None) is not None:
            self.protocol.close()


class AmiClient:
    """One supervised AMI connection. Run `run()` in a task; cancel it to stop."""

    def __init__(
        self,
        settings: AmiSettings,
        *,
        on_event: Callable[[AmiMessage], None],
        on_connected: Callable[[AmiClient], Awaitable[None]],
        events: Sequence[str] = AMI_EVENTS,
    ) -> None:
        self.settings = settings
        self._on_event = on_event
        self._on_connected = on_connected
        self._events = events
        self._manager: _Manager | None = None
        self._lost = asyncio.Event()
        self.connected = False
        self.version = ""
        self.connects = 0
        self.last_error = ""
        self.disconnected_since: float | None = time.time()
        self.boot_retry_s = BOOT_RETRY_S
        self.pbx_ready = False
        """Resynced with a PBX that is up: not booting, not shutting down (waiters wait)."""
        self._booted = asyncio.Event()
        self._shutdown_seen = False

    # --- sending ---------------------------------------------------------------------------

    async def send(
        self, action: Mapping[str, Any], *, as_list: bool = False, timeout: float | None = None
    ) -> Any:
        """Send one action; the reply Message (or the list of messages for a list action).

        Raises AmiNotConnected at once when there is no connection, AmiTimeout when no full
        reply came in time, AmiActionFailed on `Response: Error`.
        """
        manager = self._manager
        if manager is None or not manager._connected or manager.protocol is None:
            raise AmiNotConnected(f"AMI not connected; {action.get('Action')} not sent")
        future = manager.send_action(dict(action), as_list=as_list)
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # races the reply, and App.stop() would then wait forever.
            async with asyncio.timeout(timeout or self.settings.action_timeout_s):
                reply = await asyncio.shield(future)
        except TimeoutError:
            self._forget(manager, future)
            raise AmiTimeout(f"AMI {action.get('Action')}: no reply in time") from None
        except asyncio.CancelledError:
            self._forget(manager, future)
            raise
        first = reply[0] if isinstance(reply, list) else reply
        if isinstance(first, Message) and first.get("Response") == "Error":
            raise AmiActionFailed(str(action.get("Action")), str(first.get("Message", "")))
        return reply

    @staticmethod
    def _forget(manager: _Manager, future: asyncio.Future[Any]) -> None:
        responses = getattr(manager.protocol, "responses", {})
        for key, pending in list(responses.items()):
            if pending.future is future:
                del responses[key]

    # --- the supervisor --------------------------------------------------------------------

    async def run(self) -> None:
        s = self.settings
        delay = s.reconnect_min_s
        while True:
            started = time.monotonic()
            try:
                await self._session()
            except AmiLoginFailed as e:
                self.last_error = str(e)
                log.error("ami_login_failed", host=s.host, port=s.port, user=s.username,
                          error=str(e))  # fmt: skip
            except (OSError, AmiError, TimeoutError, ConnectionError) as e:
                self.last_error = str(e) or type(e).__name__
                log.warning("ami_disconnected", host=s.host, port=s.port, error=self.last_error)
            finally:
                self._drop()
            if time.monotonic() - started > s.reconnect_max_s:
                delay = s.reconnect_min_s  # it was up for a while: start the backoff afresh
            log.info("ami_reconnect_in", seconds=round(delay, 2))
            await asyncio.sleep(delay)
            delay = min(delay * 2, s.reconnect_max_s)

    async def _session(self) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        self._lost = asyncio.Event()
        self._booted = asyncio.Event()
        self._shutdown_seen = False
        manager = _Manager(
            self._lost.set,
            self._dispatch,
            host=s.host,
            port=s.port,
            loop=loop,
            protocol_factory=FastAMIProtocol,
            ping_delay=10**9,
        )
        self._manager = manager
        # asyncio.timeout, not wait_for (here and in the watchdog): on 3.11 wait_for returns
        # the result of an awaitable that finished as the task was cancelled, swallowing the
        # cancellation; the task then logs in and resyncs while App.stop() waits for it.
        async with asyncio.timeout(s.connect_timeout_s):
            await manager.connect()
        reply = await self._raw_send(manager, self._login_action(), s.connect_timeout_s)
        if reply.get("Response") != "Success":
            raise AmiLoginFailed(str(reply.get("Message") or reply.get("Response") or "no reason"))
        self.version = str(getattr(manager.protocol, "version", "") or "")
        await self._add_filter()
        self.connected = True
        self.connects += 1
        self.disconnected_since = None
        log.info("ami_connected", host=s.host, port=s.port, ami_version=self.version)
        await self._resync()
        await self._watchdog()

    async def _resync(self) -> None:
        """Run `on_connected` once the PBX is fully booted; again (same connection) while an
        action in it is refused because the PBX is not ready."""
        if not self._booted.is_set():
            log.info("ami_pbx_booting", waiting_s=self.boot_retry_s)
            await self._until_booted()
        while True:
            try:
                await self._on_connected(self)
            except AmiActionFailed as e:
                if not self.not_ready(e):
                    raise
                log.warning("ami_resync_waits_for_pbx", error=e.message)
                await self._until_booted()
                continue
            self.pbx_ready = self._booted.is_set() or not self._shutdown_seen
            return

    def not_ready(self, e: AmiActionFailed) -> bool:
        """Whether `e` was refused because the PBX is shutting down or still booting (then
        `pbx_ready` turns False until a resync succeeds)."""
        if e.message.startswith(SHUTTING_DOWN):
            self._pbx_stopping()
            return True
        return e.message.startswith(UNKNOWN_COMMAND) and not self._booted.is_set()

    def _pbx_stopping(self) -> None:
        self._shutdown_seen = True
        self._booted.clear()
        self.pbx_ready = False

    async def _until_booted(self) -> None:
        lost = asyncio.ensure_future(self._lost.wait())
        booted = asyncio.ensure_future(self._booted.wait())
        try:
            await asyncio.wait({lost, booted}, timeout=self.boot_retry_s,
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        finally:
            lost.cancel()
            booted.cancel()
        if self._lost.is_set():
            raise AmiNotConnected("connection lost while the PBX was not ready")
        if self._booted.is_set():
            log.info("ami_pbx_fully_booted")

    def _login_action(self) -> dict[str, str]:
        s = self.settings
        return {"Action": "Login", "Username": s.username, "Secret": s.secret, "Events": "on"}

    async def _raw_send(self, manager: _Manager, action: dict[str, str], timeout: float) -> Any:
        if self._lost.is_set():
            raise AmiNotConnected("connection closed")
        future = manager.send_action(action, as_list=False)
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            done, _ = await asyncio.wait({future, lost}, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        finally:
            lost.cancel()
        if future in done:
            return future.result()
        if self._lost.is_set():
            raise AmiNotConnected(f"connection closed during {action['Action']}")
        raise AmiTimeout(f"no reply to {action['Action']} in {timeout}s")

    async def _add_filter(self) -> None:
        if not self._events:
            return
        try:
            await self.send(
                {"Action": "Filter", "Operation": "Add", "Filter": event_filter(self._events)}
            )
        except AmiActionFailed as e:  # needs the `system` write class; events stay unfiltered
            log.warning("ami_filter_refused", error=e.message)

    async def _watchdog(self) -> None:
        s = self.settings
        while True:
            try:
                async with asyncio.timeout(s.ping_interval_s):
                    await self._lost.wait()
            except TimeoutError:
                pass
            else:
                raise AmiNotConnected("connection lost")
            try:
                await self.send({"Action": "Ping"}, timeout=s.ping_timeout_s)
            except AmiTimeout:
                raise AmiTimeout("watchdog: no Pong (half-open connection?)") from None
            except AmiActionFailed as e:  # an answer all the same: the connection is alive
                if not self.not_ready(e):
                    raise

    def _drop(self) -> None:
        if self.connected:
            self.disconnected_since = time.time()
        self.connected = False
        self.pbx_ready = False
        manager, self._manager = self._manager, None
        if manager is not None:
            manager.close()
            for pending in list(getattr(manager.protocol, "responses", {}).values()):
                if not pending.future.done():
                    pending.future.set_exception(AmiNotConnected("connection closed"))
                    pending.future.exception()  # mark retrieved: nobody may be awaiting it

    def _dispatch(self, msg: AmiMessage) -> None:
        name = msg.get("Event")
        if name == "FullyBooted":
            self._booted.set()
        elif name == "Shutdown":
            self._pbx_stopping()
        try:
            self._on_event(msg)
        except Exception:  # a raising handler must not drop the connection
            log.exception("ami_event_handler_failed", event=msg.get("Event"))

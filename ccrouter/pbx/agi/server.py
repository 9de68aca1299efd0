"""The FastAGI server: one `AgiConnection` protocol per socket and, once its header is in, one
session task, owned and cancelled by the server.

Per connection: read the `agi_*` header (size limit, read timeout), route by script name, run the
script under a session time limit, and on any failure set CCROUTER_STATUS=error (best effort) so
the dialplan goes to its fallback. The socket is closed when the script returns; Asterisk then
continues the dialplan.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import structlog

from ccrouter.config import AgiSettings
from ccrouter.dialplan import STATUS_ERROR, VAR_STATUS
from ccrouter.pbx.agi.connection import AgiConnection, HeaderError
from ccrouter.pbx.agi.listener import Listener, listen
from ccrouter.pbx.agi.session import (
    AgiArgumentError,
    AgiError,
    AgiHangup,
    AgiProtocolError,
    AgiRequest,
    AgiSession,
    parse_env,
)

Script = Callable[[AgiSession], Awaitable[None]]

log = structlog.get_logger(__name__)

_STATUS_TIMEOUT_S = 2.0
"""How long the error path waits for Asterisk to confirm CCROUTER_STATUS=error."""
_STREAM_LIMIT = 1 << 16
"""StreamReader buffer limit: the longest reply line (GET VARIABLE of a long value) we accept."""
_ERROR_LINE = f"SET VARIABLE {VAR_STATUS} {STATUS_ERROR}"
_LISTEN_BACKLOG = 4096
"""Connections the kernel queues before they are accepted (capped by net.core.somaxconn).
asyncio's default of 100 overflows at ~1 000 calls/s whenever the loop is busy for a few
tens of ms: the kernel then drops the SYN and Asterisk's connect() retries after 1 s, then 3 s
(measured: the caller's AGI session p99 was 1.1 s at 950 calls/s, 98 % of it in connect)."""


class ListenError(OSError):
    """A listening socket could not be had; the message names why and where, as in
    `address already in use: 127.0.0.1:4573`."""

    @classmethod
    def of(cls, exc: OSError, host: str, port: int) -> ListenError:
        code = exc.errno  # getaddrinfo's (socket.gaierror) are negative: keep its text
        reason = os.strerror(code) if code is not None and code > 0 else exc.strerror or str(exc)
        error = cls(f"{reason.lower()}: {host}:{port}")
        error.errno = exc.errno
        return error


@dataclass(slots=True)
class AgiStats:
    """Counters for the app to expose; mutated only by the server that owns it."""

    connections: int = 0
    sessions: int = 0
    """Connections with a valid header (scripts run, unknown scripts)."""
    ok: int = 0
    hangups: int = 0
    errors: int = 0
    """Scripts that failed (exception, timeout, bad arguments) and unknown scripts."""
    rejected: int = 0
    """Connections dropped before a valid header (EOF, garbage, too large, too slow)."""
    active: int = 0
    latency_total_s: float = 0.0
    latency_max_s: float = 0.0

    def as_dict(self) -> dict[str, float]:
        done = self.ok + self.hangups + self.errors
        return {
            "connections": self.connections,
            "sessions": self.sessions,
            "ok": self.ok,
            "hangups": self.hangups,
            "errors": self.errors,
            "rejected": self.rejected,
            "active": self.active,
            "latency_mean_s": self.latency_total_s / done if done else 0.0,
            "latency_max_s": self.latency_max_s,
        }


class AgiServer:
    def __init__(self, scripts: Mapping[str, Script], settings: AgiSettings) -> None:
        self._scripts = dict(scripts)
        self._settings = settings
        self._listener: Listener | None = None
        self._connections: set[AgiConnection] = set()
        self._attaching: set[asyncio.Task[None]] = set()
        """Accepted sockets becoming connections (`_attach`)."""
        self._sessions: set[asyncio.Task[None]] = set()
        self._closing = False
        self.stats = AgiStats()

    async def start(self, sockets: Sequence[socket.socket] = ()) -> tuple[str, int]:
        """Listen; the bound (host, port) — port 0 in the settings picks a free one. `sockets`:
        sockets already listening (a cluster standby's), served instead and closed at
        `close()`."""
        if self._listener is not None or self._closing:
            raise RuntimeError("AgiServer.start() called twice")
        s = self._settings
        if not sockets:
            try:
                sockets = await asyncio.to_thread(listen, s.host, s.port, _LISTEN_BACKLOG)
            except OSError as exc:
                raise ListenError.of(exc, s.host, s.port) from exc
        self._listener = Listener(sockets, self._accepted, name="agi")
        self._listener.start()
        host, port = sockets[0].getsockname()[:2]
        log.info("agi_listening", host=host, port=port, scripts=sorted(self._scripts))
        return host, port

    async def adopt(self, sock: socket.socket, received: bytes = b"") -> None:
        """Serve a connection accepted elsewhere (a call a cluster standby held until this
        instance took the node) as if accepted here; `received`: what was already read from
        it, the `agi_*` header first (the commands the standby sent are answered)."""
        if self._closing:
            sock.close()
            return
        await self._attach(sock, received)

    async def close(self) -> None:
        """Stop accepting, cancel every live session and wait for them."""
        self._closing = True
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
            for sock in listener.sockets:
                sock.close()
        for conn in list(self._connections):  # still reading a header: no task to cancel
            conn.close()
        tasks = [*self._attaching, *self._sessions]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._attaching.clear()
        self._sessions.clear()  # also those cancelled before they ran

    # --- connections ---------------------------------------------------------------------------

    def _accepted(self, sock: socket.socket) -> None:
        task = asyncio.get_running_loop().create_task(self._attach(sock))
        self._attaching.add(task)
        task.add_done_callback(self._attaching.discard)

    async def _attach(self, sock: socket.socket, received: bytes = b"") -> None:
        """A transport and an `AgiConnection` for an accepted socket (its header is read
        from here on); `received`: bytes read from it before."""
        try:
            _, conn = await asyncio.get_running_loop().connect_accepted_socket(
                self._new_connection, sock)
        except OSError as exc:  # reset before it was attached: nothing was read, nothing lost
            log.debug("agi_attach_failed", error=repr(exc))
            sock.close()
            return
        except asyncio.CancelledError:
            sock.close()
            raise
        if received:
            conn.data_received(received)

    def _new_connection(self) -> AgiConnection:
        s = self._settings
        conn = AgiConnection(
            on_header=self._on_header,
            on_failure=self._on_header_failure,
            header_max_bytes=s.header_max_bytes,
            header_timeout_s=s.header_timeout_s,
            limit=max(s.header_max_bytes + 2, _STREAM_LIMIT),
        )
        self._track(conn)
        return conn

    def _track(self, conn: AgiConnection) -> None:
        self._connections.add(conn)
        self.stats.connections += 1
        self.stats.active += 1

    def _untrack(self, conn: AgiConnection) -> None:
        if conn in self._connections:
            self._connections.discard(conn)
            self.stats.active -= 1

    def _on_header_failure(self, conn: AgiConnection, error: HeaderError) -> None:
        if conn not in self._connections:  # refused before tracking (closing)
            return
        log.warning(error.kind, peer=conn.peer(), **error.details)
        self.stats.rejected += 1
        self._untrack(conn)

    def _on_header(self, conn: AgiConnection, block: bytes) -> None:
        if conn not in self._connections:
            return
        try:
            request = AgiRequest.from_env(parse_env(block))
        except AgiProtocolError as exc:
            log.warning("agi_header_invalid", peer=conn.peer(), error=str(exc))
            self.stats.rejected += 1
            self._untrack(conn)
            conn.close()
            return
        task = asyncio.get_running_loop().create_task(self._session(conn, request))
        self._sessions.add(task)  # the task leaves the set as it ends (`_session`)

    async def _session(self, conn: AgiConnection, request: AgiRequest) -> None:
        loop = asyncio.get_running_loop()
        stats = self.stats
        try:
            stats.sessions += 1
            structlog.contextvars.bind_contextvars(uniqueid=request.uniqueid,
                                                   script=request.script)  # fmt: skip
            session = AgiSession(request, conn, conn, self._settings.command_timeout_s)
            script = self._scripts.get(request.script)
            try:
                if script is None:
                    log.warning("agi_unknown_script", known=sorted(self._scripts))
                    stats.errors += 1
                    await self._set_error_status(session)
                elif await self._run(script, session):
                    stats.ok += 1
            finally:
                session.close()
            elapsed = loop.time() - conn.started
            stats.latency_total_s += elapsed
            if elapsed > stats.latency_max_s:
                stats.latency_max_s = elapsed
        except asyncio.CancelledError:
            log.debug("agi_session_cancelled")  # close() cancelled us and awaits this task
        finally:
            self._untrack(conn)
            conn.close()
            self._sessions.discard(asyncio.current_task())

    async def _run(self, script: Script, session: AgiSession) -> bool:
        """Run the script under the session time limit; True when it returned normally."""
        limit = self._settings.session_timeout_s
        task = asyncio.current_task()
        assert task is not None
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        deadline = asyncio.get_running_loop().call_later(limit, expire)
        try:
            await script(session)
        except asyncio.CancelledError:
            if not expired:
                raise
            task.uncancel()
            log.error("agi_session_timeout", timeout_s=limit)
        except AgiHangup as exc:
            self.stats.hangups += 1
            log.debug("agi_caller_hangup", reason=str(exc))
            return False
        except AgiArgumentError as exc:
            log.error("agi_bad_arguments", error=str(exc))
        except Exception as exc:
            log.exception("agi_script_failed", error=repr(exc))
        else:
            return True
        finally:
            deadline.cancel()
        self.stats.errors += 1
        await self._set_error_status(session)
        return False

    async def _set_error_status(self, session: AgiSession) -> None:
        """Best effort: CCROUTER_STATUS=error, so the dialplan takes its fallback."""
        try:
            if session.broken:
                session.send_without_reply(_ERROR_LINE)
                return
            async with asyncio.timeout(min(_STATUS_TIMEOUT_S, self._settings.command_timeout_s)):
                await session.command(_ERROR_LINE)
        except (AgiError, OSError, TimeoutError) as exc:
            log.warning("agi_status_not_set", error=repr(exc))

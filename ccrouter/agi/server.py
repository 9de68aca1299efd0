"""The FastAGI server: asyncio streams, one task per connection, owned and cancelled by the server.

Per connection: read the `agi_*` header (size limit, read timeout), route by script name, run the
script under a session time limit, and on any failure set CCROUTER_STATUS=error (best effort) so
the dialplan goes to its fallback. The socket is closed when the script returns; Asterisk then
continues the dialplan.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import structlog

from ccrouter.agi.session import (
    AgiArgumentError,
    AgiError,
    AgiHangup,
    AgiProtocolError,
    AgiRequest,
    AgiSession,
    parse_env,
)
from ccrouter.config import AgiSettings
from ccrouter.dialplan import STATUS_ERROR, VAR_STATUS

Script = Callable[[AgiSession], Awaitable[None]]

log = structlog.get_logger(__name__)

_STATUS_TIMEOUT_S = 2.0
"""How long the error path waits for Asterisk to confirm CCROUTER_STATUS=error."""
_STREAM_LIMIT = 1 << 16
"""StreamReader buffer limit: the longest reply line (GET VARIABLE of a long value) we accept."""
_ERROR_LINE = f"SET VARIABLE {VAR_STATUS} {STATUS_ERROR}"


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
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self._closing = False
        self.stats = AgiStats()

    async def start(self) -> tuple[str, int]:
        """Listen; the bound (host, port) — port 0 in the settings picks a free one."""
        if self._server is not None or self._closing:
            raise RuntimeError("AgiServer.start() called twice")
        s = self._settings
        self._server = await asyncio.start_server(
            self._on_connection, s.host, s.port, limit=max(s.header_max_bytes + 2, _STREAM_LIMIT)
        )
        host, port = self._server.sockets[0].getsockname()[:2]
        log.info("agi_listening", host=host, port=port, scripts=sorted(self._scripts))
        return host, port

    async def close(self) -> None:
        """Stop accepting, cancel every live session and wait for them."""
        self._closing = True
        server, self._server = self._server, None
        if server is not None:
            server.close()
        tasks = list(self._sessions)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if self._closing or task is None:
            writer.close()
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        stats = self.stats
        stats.connections += 1
        stats.active += 1
        self._sessions.add(task)
        try:
            if await self._serve(reader, writer):
                elapsed = loop.time() - started
                stats.latency_total_s += elapsed
                if elapsed > stats.latency_max_s:
                    stats.latency_max_s = elapsed
        except asyncio.CancelledError:
            # close() cancelled us and awaits this task; ending normally keeps asyncio's
            # stream callback from logging the cancellation as an error.
            log.debug("agi_session_cancelled")
        finally:
            stats.active -= 1
            self._sessions.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """One connection; True when a session ran (for the latency stats)."""
        request = await self._read_request(reader, writer)
        if request is None:
            self.stats.rejected += 1
            return False
        self.stats.sessions += 1
        structlog.contextvars.bind_contextvars(uniqueid=request.uniqueid, script=request.script)
        session = AgiSession(request, reader, writer, self._settings.command_timeout_s)
        script = self._scripts.get(request.script)
        try:
            if script is None:
                log.warning("agi_unknown_script", known=sorted(self._scripts))
                self.stats.errors += 1
                await self._set_error_status(session)
            elif await self._run(script, session):
                self.stats.ok += 1
        finally:
            session.close()
        return True

    async def _read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> AgiRequest | None:
        s = self._settings

        def peer() -> object:  # only the failure paths log it (a getpeername call)
            return writer.get_extra_info("peername")

        try:
            async with asyncio.timeout(s.header_timeout_s):
                block = await reader.readuntil(b"\n\n")
        except asyncio.IncompleteReadError as exc:
            log.warning("agi_header_incomplete", peer=peer(), received_bytes=len(exc.partial))
            return None
        except asyncio.LimitOverrunError:
            log.warning("agi_header_too_large", peer=peer(), limit_bytes=s.header_max_bytes)
            return None
        except TimeoutError:
            log.warning("agi_header_timeout", peer=peer(), timeout_s=s.header_timeout_s)
            return None
        except OSError as exc:
            log.warning("agi_header_connection_lost", peer=peer(), error=str(exc))
            return None
        if len(block) > s.header_max_bytes:
            log.warning("agi_header_too_large", peer=peer(), limit_bytes=s.header_max_bytes)
            return None
        try:
            return AgiRequest.from_env(parse_env(block))
        except AgiProtocolError as exc:
            log.warning("agi_header_invalid", peer=peer(), error=str(exc))
            return None

    async def _run(self, script: Script, session: AgiSession) -> bool:
        """Run the script under the session time limit; True when it returned normally."""
        limit = self._settings.session_timeout_s
        deadline = asyncio.timeout(limit)
        try:
            async with deadline:
                await script(session)
        except AgiHangup as exc:
            self.stats.hangups += 1
            log.debug("agi_caller_hangup", reason=str(exc))
            return False
        except TimeoutError as exc:
            if deadline.expired():
                log.error("agi_session_timeout", timeout_s=limit)
            else:
                log.error("agi_script_failed", error=repr(exc))
        except AgiArgumentError as exc:
            log.error("agi_bad_arguments", error=str(exc))
        except Exception as exc:
            log.exception("agi_script_failed", error=repr(exc))
        else:
            return True
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

"""One FastAGI connection as an asyncio Protocol: the header block, then lines on demand.

The server needs no stream machinery (StreamReaderProtocol, StreamReader, StreamWriter and a
task per connection before the header is even complete): bytes arrive in `data_received`, the
header block is cut out there, and only then is a session task started. The session reads reply
lines with `readline()` (StreamReader's contract: the line with its `\\n`; what is left, or b"",
at EOF; ValueError for a line over the limit) and writes with `write()`. Reading pauses when
more than `limit` unread bytes wait, so a peer cannot grow the buffer without bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

_HEADER_END = b"\n\n"


class HeaderError(Exception):
    """Why a connection ended before a complete header: `kind` names the log event."""

    def __init__(self, kind: str, **details: Any) -> None:
        super().__init__(kind)
        self.kind, self.details = kind, details


HeaderDone = Callable[["AgiConnection", bytes], None]
HeaderFailed = Callable[["AgiConnection", HeaderError], None]


class AgiConnection(asyncio.Protocol):
    """`on_header(conn, block)` once the `\\n\\n`-terminated header is in (the block includes
    it); `on_failure(conn, error)` when the connection ends, overflows or times out first."""

    def __init__(
        self,
        *,
        on_header: HeaderDone,
        on_failure: HeaderFailed,
        header_max_bytes: int,
        header_timeout_s: float,
        limit: int,
    ) -> None:
        self._on_header: HeaderDone | None = on_header
        self._on_failure = on_failure
        self._header_max = header_max_bytes
        self._header_timeout_s = header_timeout_s
        self._limit = limit
        self._buf = bytearray()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._eof = False
        self._paused = False
        self.started = 0.0
        """Loop time the connection was accepted."""

    # --- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it
        loop = asyncio.get_running_loop()
        self.started = loop.time()
        self._timer = loop.call_later(self._header_timeout_s, self._header_timed_out)

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if self._on_header is not None:
            end = buf.find(_HEADER_END, max(0, len(buf) - len(data) - 1))
            if end < 0:
                if len(buf) > self._header_max:
                    self._fail(HeaderError("agi_header_too_large", limit_bytes=self._header_max))
                return
            block = bytes(buf[: end + 2])
            del buf[: end + 2]
            if len(block) > self._header_max:
                self._fail(HeaderError("agi_header_too_large", limit_bytes=self._header_max))
                return
            self._stop_timer()
            on_header, self._on_header = self._on_header, None
            on_header(self, block)
        if len(buf) > self._limit and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        if self._on_header is not None:
            self._fail(HeaderError("agi_header_incomplete", received_bytes=len(self._buf)))
            return False
        self._wake()
        return True  # keep the socket open for writing: last words (CCROUTER_STATUS) may follow

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._stop_timer()
        if self._on_header is not None:
            if exc is None:
                error = HeaderError("agi_header_incomplete", received_bytes=len(self._buf))
            else:
                error = HeaderError("agi_header_connection_lost", error=str(exc))
            self._on_header = None
            self._on_failure(self, error)
        self._wake()

    # --- what the session uses ---------------------------------------------------------------

    async def readline(self) -> bytes:
        while True:
            buf = self._buf
            end = buf.find(b"\n")
            if end >= 0:
                if end >= self._limit:
                    del buf[: end + 1]
                    raise ValueError(f"line longer than {self._limit} bytes")
                line = bytes(buf[: end + 1])
                del buf[: end + 1]
                self._resume_if_drained()
                return line
            if len(buf) > self._limit:
                buf.clear()
                self._resume_if_drained()
                raise ValueError(f"line longer than {self._limit} bytes")
            if self._eof:
                rest = bytes(buf)
                buf.clear()
                return rest
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self._stop_timer()
        if self._transport is not None:
            self._transport.close()

    def peer(self) -> object:
        return self._transport.get_extra_info("peername") if self._transport else None

    # --- internals ---------------------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _resume_if_drained(self) -> None:
        if self._paused and len(self._buf) <= self._limit and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _header_timed_out(self) -> None:
        self._timer = None
        if self._on_header is not None:
            self._fail(HeaderError("agi_header_timeout", timeout_s=self._header_timeout_s))

    def _fail(self, error: HeaderError) -> None:
        self._on_header = None
        self._stop_timer()
        self._on_failure(self, error)
        self.close()

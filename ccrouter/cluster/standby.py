"""A node's FastAGI port while this instance does not serve the node.

Every instance listens on the port of every node it may serve, so a call whose Asterisk finds
the holder dead is answered by the next instance in its order instead of going to the static
fallback. The generated `ccrouter-agi` subroutine tries the instances in order, and when none
served the script, once more with CCROUTER_AGI_ROUND=2. What a standby does with a call:

- **hold** it — when `standby_verdict` says so (nobody holds the node, or the holder comes
  earlier in the order: it was tried and did not answer), and always in round 2 (the holder did
  not serve it in round 1). A held call is served by this instance's daemon for the node as
  soon as it starts, as if it had just arrived; it is sent on when a later instance newly takes
  the node, or after `park_s`.
- **send it on** — otherwise: `SET VARIABLE CCROUTER_AGI_NEXT 1` and close; the subroutine
  tries the next instance, where the holder is.

When this instance takes the node, the listening socket itself is handed to the daemon's
`AgiServer` (no moment with the port closed); when the daemon stops, the port is bound again.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from ccrouter.cluster.model import standby_verdict
from ccrouter.dialplan import VAR_AGI_NEXT, VAR_AGI_ROUND
from ccrouter.pbx.agi.listener import Listener, listen
from ccrouter.pbx.agi.server import ListenError

log = structlog.get_logger(__name__)

_BACKLOG = 4096
_MAX_HELD = 10_000
"""Calls held at once; more are sent on (a bound on file descriptors, not a design figure)."""
_REPLY_TIMEOUT_S = 2.0
_HEADER_MAX = 1 << 16
_ASK_ROUND = f"GET VARIABLE {VAR_AGI_ROUND}\n".encode()
_NEXT = f"SET VARIABLE {VAR_AGI_NEXT} 1\n".encode()


@dataclass(slots=True)
class Held:
    sock: socket.socket
    received: bytes
    """What was read: the `agi_*` header (and the answer to GET VARIABLE, when asked)."""
    since: float
    holder: str | None
    """The lease holder when the call was held."""


class StandbyPort:
    """The node's FastAGI listening socket between this instance's terms as its holder."""

    def __init__(self, host: str, port: int, *, order: Sequence[str], me: str,
                 holder: Callable[[], str | None], park_s: float,
                 header_timeout_s: float) -> None:  # fmt: skip
        self._host, self._port = host, port
        self._order, self._me, self._holder = list(order), me, holder
        self._park_s = park_s
        self._header_timeout_s = header_timeout_s
        self._listen: Listener | None = None
        self._held: list[Held] = []
        self._holding = False
        """Calls may be held: from `open()` until the daemon took them (`take_held`)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self.held_total = 0
        self.sent_on = 0

    def open(self) -> None:
        """Listen (again) and answer calls. A port that cannot be had is logged with the
        reason — the node's daemon then fails to start on it too, and says so."""
        if self._listen is not None:
            return
        try:
            sockets = listen(self._host, self._port, _BACKLOG)
        except OSError as exc:
            log.warning("standby_listen_failed",
                        error=str(ListenError.of(exc, self._host, self._port)))  # fmt: skip
            return
        # Accepting in a reader callback, not an awaited sock_accept: stopping it at the hand-
        # over cannot lose a connection accepted in the same instant (a cancelled await would).
        self._listen, self._holding = Listener(sockets, self._accepted, name="standby"), True
        self._listen.start()
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep(),
                                                               name="standby_sweep")

    def hand_over(self) -> list[socket.socket]:
        """Stop answering and give the listening sockets to the node's daemon (which closes
        them when it stops); none when there are none."""
        listener, self._listen = self._listen, None
        if listener is not None:
            listener.stop()
        if self._sweeper is not None:
            self._sweeper.cancel()
        return listener.sockets if listener is not None else []

    def take_held(self) -> list[Held]:
        """The held calls, for the node's daemon to serve (oldest first)."""
        held, self._held, self._holding = self._held, [], False
        return held

    async def close(self) -> None:
        """Stop listening; held calls are sent on (best effort), every task ended."""
        for sock in self.hand_over():
            sock.close()
        for held in self.take_held():
            self._spawn(self._send_on(held.sock))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_REPLY_TIMEOUT_S):
                await asyncio.gather(*self._tasks, return_exceptions=True)
        tasks = [*([self._sweeper] if self._sweeper else []), *self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- inside --------------------------------------------------------------------------------

    def _verdict(self) -> str:
        return standby_verdict(self._order, self._me, self._holder())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks.add(asyncio.get_running_loop().create_task(self._owned(coro)))

    async def _owned(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        finally:
            self._tasks.discard(asyncio.current_task())

    def _accepted(self, conn: socket.socket) -> None:
        self._spawn(self._answer(conn))

    async def _answer(self, conn: socket.socket) -> None:
        """Read the header; hold the call or send it on (see the module's rules)."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._header_timeout_s):
                received = await _read_until(conn, b"", b"\n\n")
            verdict = self._verdict()
            if verdict == "next":
                await loop.sock_sendall(conn, _ASK_ROUND)
                end = received.index(b"\n\n") + 2
                async with asyncio.timeout(_REPLY_TIMEOUT_S):
                    received = await _read_until(conn, received, b"\n", start=end)
                reply_end = received.index(b"\n", end) + 1
                if received[end:reply_end].rstrip().endswith(b"(2)"):  # 200 result=1 (2)
                    verdict = "park"
                received = received[:end] + received[reply_end:]  # the daemon reads no reply
        except (OSError, TimeoutError, ValueError) as exc:
            log.debug("standby_header_failed", error=repr(exc))
            conn.close()
            return
        if verdict == "park" and len(self._held) < _MAX_HELD and self._holding:
            self._held.append(Held(conn, received, loop.time(), self._holder()))
            self.held_total += 1
        else:
            await self._send_on(conn)

    async def _sweep(self) -> None:
        """Send on what waited `park_s`, and what a later instance newly holding the node
        will serve."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(0.1, self._park_s / 10))
            if not self._held:
                continue
            now, holder, on = loop.time(), self._holder(), self._verdict() == "next"
            keep = []
            for held in self._held:
                if (on and holder != held.holder) or now - held.since >= self._park_s:
                    self._spawn(self._send_on(held.sock))
                else:
                    keep.append(held)
            self._held = keep

    async def _send_on(self, conn: socket.socket) -> None:
        self.sent_on += 1
        try:
            await asyncio.get_running_loop().sock_sendall(conn, _NEXT)
            async with asyncio.timeout(_REPLY_TIMEOUT_S):
                await _read_until(conn, b"", b"\n")  # 200 result=1
        except (OSError, TimeoutError, ValueError) as exc:
            log.debug("standby_send_on_failed", error=repr(exc))
        finally:
            conn.close()


async def _read_until(conn: socket.socket, received: bytes, marker: bytes, *,
                      start: int = 0) -> bytes:  # fmt: skip
    """`received` plus what `conn` sends until `marker` appears after `start`; ValueError at
    EOF or beyond the header limit."""
    loop = asyncio.get_running_loop()
    data = bytearray(received)
    while data.find(marker, start) < 0:
        chunk = await loop.sock_recv(conn, 4096)
        if not chunk:
            raise ValueError("closed by Asterisk")
        data += chunk
        if len(data) > _HEADER_MAX:
            raise ValueError("header too large")
    return bytes(data)


__all__ = ["Held", "StandbyPort"]

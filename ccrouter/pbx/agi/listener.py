"""Listening for FastAGI connections: the sockets, and taking every connection that waits.

`Listener` reads a listening socket in a reader callback that accepts up to ACCEPTS_PER_TURN
connections each time the loop finds it readable, and hands each to its owner. The FastAGI
server (`AgiServer`) and a cluster standby's port (`ccrouter.cluster.standby`) both use it;
`listen` binds the sockets as `loop.create_server` would.

Why not `loop.create_server`: under uvloop (the daemon's loop) libuv's `uv__server_io`
accepts one connection per poll of the listening socket, i.e. one per turn of the loop. A loop
busy for a few ms a turn then takes 200-300 connections a second, whatever the kernel holds:
at 800 connections/s against a loop that ran 3 ms of work a turn, a connection waited 3.4 s
(median) to be accepted and one in six was reset, against 8.7 ms with this reader (2026-12-04,
the same client and loop; README "The wait to be accepted was libuv's"). In the end-to-end
benchmark the wait to be accepted was most of the slowest 1 % of the caller's sessions.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable, Sequence

import structlog

log = structlog.get_logger(__name__)

ACCEPTS_PER_TURN = 256
"""Connections taken per readiness of one listening socket; the rest wait for the next turn
(the socket is still readable then), so one flood cannot hold the loop for long."""
_PAUSE_S = 1.0
"""How long accepting pauses when the process is out of descriptors or memory (asyncio's own
ACCEPT_RETRY_DELAY): the connections wait in the kernel's backlog meanwhile."""
_PAUSE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def listen(host: str | None, port: int, backlog: int) -> list[socket.socket]:
    """Non-blocking listening sockets for every address `host` resolves to (all interfaces
    when empty), as `loop.create_server` binds them: SO_REUSEADDR, IPv6 sockets IPv6-only.
    Raises OSError (socket.gaierror for a name that does not resolve)."""
    infos = socket.getaddrinfo(host or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0,
                               socket.AI_PASSIVE)  # fmt: skip
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class Listener:
    """Accepts on `sockets` from `start()` to `stop()` (which leaves them open: the owner
    closes them, or hands them on) and gives every accepted, non-blocking socket to
    `on_accepted` at once."""

    def __init__(self, sockets: Sequence[socket.socket],
                 on_accepted: Callable[[socket.socket], None], *, name: str) -> None:  # fmt: skip
        self.sockets = list(sockets)
        self._on_accepted = on_accepted
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._resume: asyncio.TimerHandle | None = None

    def start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._watch(True)

    def stop(self) -> None:
        if self._resume is not None:  # paused: no readers to remove
            self._resume.cancel()
            self._resume = None
        elif self._loop is not None:
            self._watch(False)
        self._loop = None

    def _watch(self, on: bool) -> None:
        loop = self._loop
        assert loop is not None
        for sock in self.sockets:
            if on:
                loop.add_reader(sock.fileno(), self._accept, sock)
            elif sock.fileno() != -1:
                loop.remove_reader(sock.fileno())

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(ACCEPTS_PER_TURN):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the peer gave up while it waited: take the next
            except OSError as exc:
                log.warning("agi_accept_failed", listener=self._name, error=str(exc))
                if exc.errno in _PAUSE_ERRORS:
                    self._pause()
                return
            conn.setblocking(False)
            self._on_accepted(conn)

    def _pause(self) -> None:
        if self._loop is not None and self._resume is None:
            self._watch(False)
            self._resume = self._loop.call_later(_PAUSE_S, self._unpause)

    def _unpause(self) -> None:
        self._resume = None
        self._watch(True)

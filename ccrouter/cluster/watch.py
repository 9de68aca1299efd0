"""A standby's AMI connection to a node it does not serve: it only listens.

Issue 13: every instance "holds an AMI connection to the nodes it is given". While a `NodeSlot`
does not hold its node, its `AmiWatch` is logged in to the node's Asterisk with the node's
`ami` settings, through the daemon's own supervised client (`ccrouter.pbx.ami.connection`:
Login, an event Filter, the watchdog's Ping — no action that changes Asterisk — and reconnects
with capped exponential backoff), and keeps the call events of the last few lease periods in
a `WatchBuffer` (`ccrouter.cluster.model`). When the slot takes the node, its daemon is handed
the buffer at its first resync (`App.gap_events`) and the watch stops: the daemon's own
connection carries on from there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from ccrouter.app import cancel_all
from ccrouter.calls.model.gap import Watched
from ccrouter.cluster.model import WatchBuffer, WatchPolicy
from ccrouter.config import AmiSettings
from ccrouter.pbx.ami.connection import AmiClient

log = structlog.get_logger(__name__)

_ALSO_FILTERED = ("FullyBooted", "Shutdown")
"""Admitted but not buffered: the client's own boot/shutdown tracking reads them."""


class AmiWatch:
    """One node's standby AMI connection and its event buffer. `start()` runs it (again),
    `stop()` ends it; `take()` hands the buffer over."""

    def __init__(self, settings: AmiSettings, policy: WatchPolicy, *,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self._settings = settings
        self.buffer = WatchBuffer(policy)
        self._clock = clock
        self._client: AmiClient | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def connected(self) -> bool:
        """Logged in to the node now."""
        return self._client is not None and self._client.connected

    def start(self) -> None:
        """Connect (when not running) and buffer; a running watch is unpinned (the node was
        not taken after all)."""
        self.buffer.unpin()
        if self.running:
            return
        names = (*sorted(self.buffer.policy.names), *_ALSO_FILTERED)
        self._client = AmiClient(self._settings, on_event=self._on_event,
                                 on_connected=self._connected, events=names)  # fmt: skip
        self._task = asyncio.create_task(self._run(self._client), name="standby_ami")

    def pin(self) -> None:
        """The node is being taken over: keep what came since a window before now."""
        self.buffer.pin(self._clock())

    def take(self) -> list[Watched]:
        """The buffered events, oldest first (the buffer is empty after)."""
        events = self.buffer.take()
        if self.buffer.dropped:
            log.warning("standby_ami_events_dropped", count=self.buffer.dropped,
                        max_events=self.buffer.policy.max_events)  # fmt: skip
            self.buffer.dropped = 0
        return events

    async def stop(self) -> None:
        """Log out of the node (the socket closed) and end the task; the buffer is kept."""
        task, self._task, self._client = self._task, None, None
        if task is not None:
            await cancel_all([task])

    # --- inside --------------------------------------------------------------------------------

    async def _run(self, client: AmiClient) -> None:
        structlog.contextvars.bind_contextvars(ami="standby")  # this task's log lines
        await client.run()

    async def _connected(self, client: AmiClient) -> None:
        log.info("standby_ami_watching", host=self._settings.host, port=self._settings.port)

    def _on_event(self, msg: Mapping[str, Any]) -> None:
        self.buffer.add(self._clock(), msg)


__all__ = ["AmiWatch"]

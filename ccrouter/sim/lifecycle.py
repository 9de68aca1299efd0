"""The simulated PBX's life: start, close, and Asterisk restarts — `core restart now` (graceful:
calls hung up with their events, then Shutdown Cleanly), an abrupt restart (Shutdown, calls
vanish without events), the AMI port down for a while, and a boot during which app_queue's
actions are unknown and FullyBooted comes at the end. Owns the start-up time (CoreStatus,
FullyBooted Uptime) and cancels the simulator's tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace

import structlog

from . import events as ev
from .actions import Actions
from .ami import AmiServer
from .core import Core
from .engine import QueueEngine

log = structlog.get_logger(__name__)


class Lifecycle:
    """Start, close and restart of one simulated PBX (see `PbxSimulator.restart`)."""

    def __init__(self, core: Core, ami: AmiServer, engine: QueueEngine, actions: Actions,
                 tasks: set[asyncio.Task[None]], started: float) -> None:
        self._core = core
        self._ami = ami
        self._engine = engine
        self._actions = actions
        self._tasks = tasks
        self.started = started
        """Wall time the PBX (last) started."""
        self.booted_at: float | None = None
        """Loop time of the last `FullyBooted` sent after a `restart(boot_s=...)`."""
        self._boot_timer: asyncio.TimerHandle | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._core.loop = asyncio.get_running_loop()
        self._core.loop_t0 = self._core.loop.time()
        await self._ami.start(host, port)
        log.info("sim.started", ami_port=self._ami.port, agi_port=self._core.opt.agi_port)

    async def close(self) -> None:
        if self._boot_timer is not None:
            self._boot_timer.cancel()
        await cancel_quietly(list(self._tasks))
        self._engine.reset()
        await self._ami.close()
        self._core.loop = None

    async def restart(self, down_s: float = 0.0, *, boot_s: float = 0.0,
                      graceful_s: float | None = None, announce_boot: bool = True) -> None:
        """`PbxSimulator.restart`."""
        if graceful_s is not None:
            await self._shut_down(graceful_s)
        else:
            self._core.emit("Shutdown", ev.SYSTEM, ev.shutdown, True)
        self._ami.drop_all()
        self._ami.shutting_down, self._ami.booted = False, True
        port, host = self._ami.port, self._ami.host
        if down_s > 0:
            await self._ami.stop_listening()
        await self._tear_down()
        if boot_s > 0:
            self._begin_boot()
        if down_s > 0:
            await asyncio.sleep(down_s)
            await self._ami.start(host, port)
        if boot_s > 0:
            self._boot_timer = asyncio.get_running_loop().call_later(boot_s, self._booted,
                                                                     announce_boot)
        log.info("sim.restarted", epoch=self._core.epoch)

    async def _shut_down(self, window_s: float) -> None:
        self._ami.shutting_down = True
        for live in list(self._core.live.values()):
            live.caller_hangup()  # ast_softhangup_all
        await asyncio.sleep(window_s)
        self._core.emit("Shutdown", ev.SYSTEM, lambda: "Shutdown: Cleanly\r\nRestart: True\r\n")

    async def _tear_down(self) -> None:
        core = self._core
        core.noise, saved = False, core.noise
        core.ami = _Muted()  # type: ignore[assignment]
        try:
            await cancel_quietly(list(self._tasks))
        finally:
            core.ami = self._ami
            core.noise = saved
        self._engine.reset()
        core.channels.clear()
        core.live.clear()
        core.device.clear()
        for q in core.queues.values():
            q.reset_stats()
            for iface in [i for i, m in q.members.items() if m.dynamic]:
                del q.members[iface]
            for iface, m in list(q.members.items()):
                q.members[iface] = replace(m, calls_taken=0, last_call=0, in_call=False,
                                           busy_until=0.0, login_time=core.wall())
        core.new_epoch()
        core.processed = 0
        self.started = self._actions.started = time.time()  # CoreStatus: the new start-up

    def _begin_boot(self) -> None:
        self.booted_at = None
        self._ami.booted = False
        self._actions.booting = True

    def _booted(self, announce: bool) -> None:
        self._boot_timer = None
        self._ami.booted = announce
        self._actions.booting = False
        self.booted_at = asyncio.get_running_loop().time()
        if announce:
            self._core.emit("FullyBooted", ev.SYSTEM, ev.fully_booted,
                            int(time.time() - self.started))
        log.info("sim.fully_booted")


class _Muted:
    """Stands in for the AMI server while a restart tears calls down: nothing is sent."""

    def wants(self, name: str) -> bool:
        return False

    def emit(self, name: str, priv: str, body: str) -> None:
        return None


async def cancel_quietly(tasks: list[asyncio.Task[None]]) -> None:
    for t in tasks:
        t.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*tasks, return_exceptions=True)

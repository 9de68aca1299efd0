"""One process of a cluster: for every node it may serve, wait for that node's lease, then be
its ccrouter (a whole `App`: AMI, FastAGI, HTTP, card writer, features) while it holds it.

`NodeSlot.run()` loops: acquire (asking every `poll_s`), start the node's daemon, renew every
`renew_s`; the daemon stops when the lease is lost (renewals failed for `demote_s`: the
database is unreachable, or another instance holds a newer term), when the daemon fails, or at
SIGTERM — which also releases the lease, so another instance takes the node at once. A daemon
that cannot start (its port is taken) gives the lease back and waits `lease_s` before asking
again, so a broken instance does not hold a node hostage.

While it does not serve the node, the slot's `AmiWatch` listens to the node's AMI; the daemon
that takes the node is handed what it heard at its first resync, and the watch stops until the
slot stands by again.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable

import structlog
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from ccrouter.app import App, cancel_all, run_unless, start_failed
from ccrouter.calls.model.gap import Watched
from ccrouter.cluster.lease import LeaseStore
from ccrouter.cluster.model import UNKNOWN, LeaseTiming, WatchPolicy, my_nodes, node_settings
from ccrouter.cluster.standby import StandbyPort
from ccrouter.cluster.watch import AmiWatch
from ccrouter.config import Settings
from ccrouter.db.engine import make_engine
from ccrouter.db.migrate import migrate
from ccrouter.logs import configure_logging

log = structlog.get_logger(__name__)

AppFactory = Callable[[Settings], App]


def node_app(settings: Settings) -> App:
    """A node's daemon; the instance migrated the database before any node started."""
    return App(settings, migrated=True)


class NodeSlot:
    """This instance's seat for one node: holds its lease and runs its daemon while it does."""

    def __init__(self, settings: Settings, node: str, store: LeaseStore,
                 make_app: AppFactory = node_app) -> None:  # fmt: skip
        self._settings = node_settings(settings, node)
        self.node = node
        self._store = store
        self._timing = LeaseTiming.of(settings.cluster.lease_s)
        self._lease_s = settings.cluster.lease_s
        self._make_app = make_app
        self.app: App | None = None
        self.term: int | None = None
        self._acquired_at = 0.0
        self.serving = asyncio.Event()
        """Set while this slot's daemon has started and holds the lease (tests wait on it)."""
        self._me = store.holder
        self._holder: str | None = None
        """The node's live lease holder as last read (this instance while it holds it)."""
        agi = self._settings.agi
        self.port = StandbyPort(agi.host, agi.port, order=settings.cluster.serving_order(node),
                                me=store.holder, holder=lambda: self._holder,
                                park_s=self._timing.park_s,
                                header_timeout_s=agi.header_timeout_s)  # fmt: skip
        """The node's FastAGI port while this instance does not serve it."""
        self.watch = AmiWatch(self._settings.ami, WatchPolicy.of(self._timing))
        """The node's AMI, listened to while this instance does not serve it."""

    async def run(self, stop: asyncio.Event) -> None:
        """Serve the node whenever its lease can be had, until `stop` is set (then the
        daemon stops as at SIGTERM, its cards flushed, and the lease is released)."""
        structlog.contextvars.bind_contextvars(node=self.node)  # this task and its children
        try:
            while not stop.is_set():
                self.port.open()
                self.watch.start()
                if not await run_unless(stop, self._acquire()):
                    return
                self.watch.pin()
                assert self.term is not None
                started = await self._serve(self.term, stop)
                if not started and not stop.is_set():  # let another instance have it
                    await run_unless(stop, asyncio.sleep(self._lease_s))
        finally:
            await self.watch.stop()
            await self.port.close()

    async def _acquire(self) -> None:
        asked_at = time.monotonic()
        while True:
            started = time.monotonic()  # the row lives ttl_s from no earlier than this
            try:
                async with asyncio.timeout(max(self._timing.poll_s, 1.0)):
                    term, self._holder = await self._store.try_acquire(self.node)
            except Exception as exc:  # the database is away: ask again
                log.warning("lease_acquire_failed", error=str(exc) or type(exc).__name__)
                term, self._holder = None, UNKNOWN
            if term is not None:
                waited = round(time.monotonic() - asked_at, 3)
                log.info("lease_acquired", term=term, waited_s=waited)
                self.term, self._acquired_at, self._holder = term, started, self._me
                return
            await asyncio.sleep(self._timing.poll_s)

    async def _serve(self, term: int, stop: asyncio.Event) -> bool:
        """Run the node's daemon while the lease holds and until `stop`; whether it started."""
        lost = asyncio.Event()
        renewer = asyncio.create_task(self._renew(term, lost), name=f"lease_{self.node}")
        app = self._make_app(self._settings)
        self.app = app
        listening = app.agi_sockets = self.port.hand_over()
        app.gap_events = self._watched
        started = False
        end = asyncio.Event()  # the lease lost or the stop asked for
        watchers = [asyncio.create_task(_relay(e, end)) for e in (lost, stop)]
        try:
            try:
                started = await run_unless(end, app.start())
            except Exception as exc:
                start_failed(exc)
            if started:
                held = self.port.take_held()
                for call in held:
                    await app.agi.adopt(call.sock, call.received)
                if held:
                    log.info("held_calls_served", count=len(held))
                self.serving.set()
                await run_unless(end, app.failed.wait())
                if app.failed.is_set():
                    log.error("node_daemon_failed", term=term)
        finally:
            self.serving.clear()
            await cancel_all([renewer, *watchers])
            await app.stop()
            for sock in listening:
                sock.close()  # the daemon's server closed them, unless it never started
            self.app = None
            self._holder = UNKNOWN if lost.is_set() else None  # lost: the database or a rival
            if not lost.is_set():
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self._timing.renew_s + 1.0):
                        await self._store.release(self.node, term)
                log.info("lease_released", term=term)
        return started

    async def _watched(self) -> list[Watched]:
        """What the watch heard, for the daemon's first resync; the watch stops (the daemon's
        own connection is logged in and holds its events meanwhile)."""
        await self.watch.stop()
        events = self.watch.take()
        log.info("standby_ami_handed_over", events=len(events))
        return events

    async def _renew(self, term: int, lost: asyncio.Event) -> None:
        renewed_at = self._acquired_at
        while True:
            await asyncio.sleep(self._timing.renew_s)
            asked_at = time.monotonic()
            ours: bool | None
            try:
                async with asyncio.timeout(self._timing.renew_s):
                    ours = await self._store.renew(self.node, term)
            except Exception as exc:  # whatever it is, the lease was not renewed
                log.warning("lease_renew_failed", term=term, error=str(exc) or type(exc).__name__)
                ours = None
            if ours:
                renewed_at = asked_at
                continue
            if ours is False or time.monotonic() - renewed_at >= self._timing.demote_s:
                log.error("lease_lost", term=term, taken=ours is False,
                          since_renewal_s=round(time.monotonic() - renewed_at, 3))  # fmt: skip
                lost.set()
                return


async def _relay(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


class ClusterInstance:
    """This process in the cluster: one `NodeSlot` per node it may serve."""

    def __init__(self, settings: Settings, make_app: AppFactory = node_app) -> None:
        self._settings = settings
        self._make_app = make_app
        self.slots: list[NodeSlot] = []

    async def run(self, stop: asyncio.Event) -> int:
        """Run the node slots until `stop` is set (0); a start-up failure (not one of the
        instances, database unreachable) is logged with its reason (1)."""
        settings = self._settings
        try:
            me = settings.cluster.me()
            nodes = my_nodes(settings)
        except LookupError as exc:
            log.error("ccrouter_start_failed", error=str(exc))
            return 1
        url = settings.database.url
        engine = make_engine(url)
        try:
            try:
                if not await run_unless(stop, migrate(engine)):
                    return 0
            except (OSError, SQLAlchemyError) as exc:
                reason = exc.orig if isinstance(exc, DBAPIError) else exc
                log.error("ccrouter_start_failed", error=f"database {url}: {reason}")
                return 1
            store = LeaseStore(engine, me.name, LeaseTiming.of(settings.cluster.lease_s).ttl_s)
            self.slots = [NodeSlot(settings, node, store, self._make_app) for node in nodes]
            log.info("cluster_instance_started", instance=me.name, nodes=nodes,
                     lease_s=settings.cluster.lease_s)  # fmt: skip
            tasks = [asyncio.create_task(s.run(stop), name=f"slot_{s.node}") for s in self.slots]
            try:
                await asyncio.gather(*tasks)  # each returns once `stop` is set and it stopped
            finally:
                await cancel_all(tasks)
            log.info("cluster_instance_stopped", instance=me.name)
            return 0
        finally:
            await engine.dispose()


async def _main(settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return await ClusterInstance(settings).run(stop)


def main(settings: Settings) -> int:
    from ccrouter.app import run

    configure_logging(settings.log)
    return run(_main(settings))


__all__ = ["ClusterInstance", "NodeSlot", "main"]

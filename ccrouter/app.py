"""Wiring: the one place where settings, store, adapters and services meet, and the only
module that imports every feature (features see it as `ccrouter.runtime.Daemon`).

`App.start()` opens the database (migrations, card numbers, open cards restored), starts the
card writer, the AMI supervisor, the tracker's sweeper and the FastAGI server; `App.stop()`
stops them in reverse order and flushes every card. `main()` runs it until SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import signal
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import structlog

from ccrouter.routing.agi import route
from ccrouter.pbx.agi.server import AgiServer, Script
from ccrouter.pbx.ami.connection import AmiClient
from ccrouter.config import Settings
from ccrouter.dialplan import SCRIPT_ROUTE
from ccrouter.calls.model.book import CallBook
from ccrouter.logs import configure_logging
from ccrouter.runtime import Feature, ResyncHook, SitePart
from ccrouter.routing.router import Router, routing_table
from ccrouter.calls.tracker import CallTracker
from ccrouter.db.engine import make_engine
from ccrouter.db.migrate import migrate
from ccrouter.calls.numbers import CardNumbers
from ccrouter.calls.store import CardStore
from ccrouter.calls.writer import CardWriter

log = structlog.get_logger(__name__)


def default_features() -> Sequence[Feature]:
    """Every feature module's `install`, in the order they are wired."""
    from ccrouter.callbacks.feature import install as callbacks
    from ccrouter.ivr.feature import install as ivr
    from ccrouter.routing.feature import install as routing
    from ccrouter.web import install as web  # keep last: it times the AGI scripts before it

    return (routing, callbacks, ivr, web)


def default_site_parts() -> Sequence[SitePart]:
    """Each feature's part of the web site (endpoints over the shared database, and what the
    wallboard shows), in the order the site adds them: reports before alerts (alerts read the
    KPIs)."""
    from ccrouter.alerts.http import site as alerts
    from ccrouter.callbacks.http import site as callbacks
    from ccrouter.ivr.http import site as ivr
    from ccrouter.reports.http import site as reports
    from ccrouter.routing.http import site as routing

    return (reports, alerts, ivr, callbacks, routing)


class App:
    """The running daemon. Owns every background task: `stop()` cancels and awaits them."""

    def __init__(self, settings: Settings, features: Sequence[Feature] | None = None) -> None:
        self.settings = settings
        self._features = default_features() if features is None else features
        self._tasks: list[asyncio.Task[None]] = []
        self.failed = asyncio.Event()
        self._stopping = False
        self.agi_address: tuple[str, int] = ("", 0)
        self.scripts: dict[str, Script] = {}
        self.resync_hooks: list[ResyncHook] = []
        """Run in order after every AMI (re)connect; the tracker's resync is first."""
        self.site_parts: Sequence[SitePart] = default_site_parts()
        self.callbacks: Any = None
        """The callback feature's request service, when installed (the IVR offers callbacks)."""
        self.operators: Any = None
        self.membership: Any = None
        """The routing feature's services, when installed."""
        self.stop_hooks: list[Callable[[], Awaitable[None]]] = []
        """Run first at `stop()`, in reverse order (e.g. close an HTTP site)."""

    async def start(self) -> None:
        s = self.settings
        self.engine = make_engine(s.database.url)
        await migrate(self.engine)
        self.store = CardStore(self.engine)
        self.numbers = await CardNumbers.open(self.engine)
        self.writer = CardWriter(self.engine, s.database, numbers=self.numbers)
        book = CallBook(
            new_number=self.numbers.next,
            short_abandon_s=s.calls.short_abandon_s,
            close_grace_s=s.calls.close_grace_s,
        )
        open_cards = await self.store.open_cards()
        book.restore(open_cards)
        if open_cards:
            log.info("open_cards_restored", count=len(open_cards))
        self.tracker = CallTracker(book, self.writer)
        self.router = Router(routing_table(s), self.tracker)
        self.ami = AmiClient(s.ami, on_event=self.tracker.on_ami_event,
                             on_connected=self._ami_connected)  # fmt: skip
        self.resync_hooks.append(self.tracker.resync)
        self.scripts[SCRIPT_ROUTE] = functools.partial(route, router=self.router)
        self.spawn("card_writer", self.writer.run())
        self.spawn("tracker_sweeper", self.tracker.run())
        for install in self._features:
            await install(self)
        self.agi = AgiServer(self.scripts, s.agi)
        self.spawn("ami", self.ami.run())
        self.agi_address = await self.agi.start()
        log.info("ccrouter_started", agi=f"{self.agi_address[0]}:{self.agi_address[1]}",
                 ami=f"{s.ami.host}:{s.ami.port}", database=s.database.url)  # fmt: skip

    async def _ami_connected(self, ami: AmiClient) -> None:
        for hook in self.resync_hooks:
            await hook(ami)

    def spawn(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        """Run a background task owned by the app (cancelled and awaited by `stop()`)."""
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or (self._stopping and task.exception() is None):
            return
        log.error("task_died", task=task.get_name(), error=repr(task.exception()))
        self.failed.set()

    async def stop(self) -> None:
        self._stopping = True
        for hook in reversed(self.stop_hooks):
            await hook()
        await self.agi.close()
        for task in self._tasks:
            if task.get_name() != "card_writer":
                task.cancel()
        for task in self._tasks:
            if task.get_name() != "card_writer":
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            async with asyncio.timeout(self.settings.database.write_retry_s * 10):
                await self.writer.close()
        except TimeoutError:
            log.error("card_writer_close_timeout", pending=self.writer.stats.queue_depth)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.store.close()
        await self.engine.dispose()
        log.info("ccrouter_stopped", cards_written=self.writer.stats.rows_written)


def settle_heap() -> None:
    """After start-up: move what start-up built (modules, config, the operator floor) out of
    the cyclic GC's sight, so its full collections stay short under load (gc.freeze)."""
    gc.collect()
    gc.freeze()


async def serve(settings: Settings, stop: asyncio.Event) -> int:
    app = App(settings)
    await app.start()
    settle_heap()
    try:
        waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(app.failed.wait())}
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            w.cancel()
    finally:
        await app.stop()
    return 1 if app.failed.is_set() else 0


async def _main(settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return await serve(settings, stop)


def run(coro: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop where it is installed (about 2.5x the FastAGI throughput), else asyncio."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(coro)
    return int(uvloop.run(coro))


def main(settings: Settings) -> int:
    configure_logging(settings.log)
    return run(_main(settings))

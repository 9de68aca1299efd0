"""Wiring: the one place where settings, store, adapters and services meet, and the only
module that imports every feature (features see it as `ccrouter.runtime.Daemon`).

`App.start()` opens the database (migrations, card numbers, open cards restored), starts the
card writer, the tracker's sweeper, the features (the HTTP site binds its port), the FastAGI
server and, last, the AMI supervisor: a daemon that cannot serve never touches the PBX.
`App.stop()` stops whatever started, in reverse order, and flushes every card. `main()` runs it
until SIGINT/SIGTERM, which stop it at any point of start-up too; a start-up failure is one
`ccrouter_start_failed` log line with the reason and exit code 1.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any

import structlog
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from ccrouter.calls.model.book import CallBook
from ccrouter.calls.numbers import CardNumbers
from ccrouter.calls.store import CardStore
from ccrouter.calls.tracker import CallTracker
from ccrouter.calls.writer import CardWriter
from ccrouter.config import Settings
from ccrouter.db.engine import make_engine
from ccrouter.db.migrate import migrate
from ccrouter.dialplan import SCRIPT_PING, SCRIPT_ROUTE
from ccrouter.logs import configure_logging
from ccrouter.pbx.agi.ping import ping
from ccrouter.pbx.agi.server import AgiServer, ListenError, Script
from ccrouter.pbx.ami.connection import AmiClient
from ccrouter.routing.agi import route
from ccrouter.routing.router import Router, routing_table
from ccrouter.runtime import Feature, Gauge, ResyncHook, SitePart
from ccrouter.wiring import register

register()  # every feature's config section, before any settings are loaded

log = structlog.get_logger(__name__)


_CANCEL_ROUNDS = 5
_CANCEL_WAIT_S = 0.5
"""`stop()` cancels a task again when it is still running this long after a cancel."""
_LEFTOVER_GRACE_S = 0.5
"""How long the process waits at exit for tasks and threads that outlive the stop (below)."""


GapSource = Callable[[], Awaitable[Sequence[tuple[float, Mapping[str, Any]]]]]
"""Gives the AMI events another connection received while this daemon was not serving."""


class StartupError(Exception):
    """Start-up cannot go on; the message says why (logged as `ccrouter_start_failed`)."""


def default_features() -> Sequence[Feature]:
    """Every feature module's `install`, in the order they are wired."""
    from ccrouter.callbacks.feature import install as callbacks
    from ccrouter.digest.feature import install as digest
    from ccrouter.helpdesk.feature import install as helpdesk
    from ccrouter.ivr.feature import install as ivr
    from ccrouter.qc.feature import install as qc
    from ccrouter.recordings.feature import install as recordings
    from ccrouter.routing.feature import install as routing
    from ccrouter.web.feature import install as web  # keep last: it times the AGI scripts before it

    return (routing, callbacks, ivr, helpdesk, recordings, qc, digest, web)


def default_site_parts() -> Sequence[SitePart]:
    """Each feature's part of the web site (endpoints over the shared database, and what the
    wallboard shows), in the order the site adds them: reports before alerts (alerts read the
    KPIs)."""
    from ccrouter.alerts.http import site as alerts
    from ccrouter.callbacks.http import site as callbacks
    from ccrouter.helpdesk.http import site as helpdesk
    from ccrouter.ivr.http import site as ivr
    from ccrouter.qc.http import site as qc
    from ccrouter.recordings.http import site as recordings
    from ccrouter.reports.http import site as reports
    from ccrouter.routing.http import site as routing

    return (reports, alerts, ivr, callbacks, routing, helpdesk, recordings, qc)


class App:
    """The running daemon. Owns every background task: `stop()` cancels and awaits them."""

    def __init__(self, settings: Settings, features: Sequence[Feature] | None = None, *,
                 migrated: bool = False) -> None:  # fmt: skip
        """`migrated`: the database is known to be at the head revision (a cluster instance
        migrates once for all its nodes: alembic's work would stall the other nodes' lease
        renewals in this process)."""
        self.settings = settings
        self._migrated = migrated
        self._features = default_features() if features is None else features
        self._tasks: list[asyncio.Task[None]] = []
        self.failed = asyncio.Event()
        self._stopping = False
        self.agi_address: tuple[str, int] = ("", 0)
        self.agi_sockets: list[socket.socket] = []
        """Sockets already listening on the FastAGI port to serve (a cluster standby's);
        none: the server binds `agi.host`/`agi.port` itself."""
        self.gap_events: GapSource | None = None
        """Set before `start()` by a cluster instance taking the node over: gives the AMI
        events its standby connection to the node received (receive time, message; oldest
        first). The tracker holds its own events from the start until the first AMI resync,
        which first applies what of these the restored cards do not show yet, then the held
        ones, then reconciles (`CallTracker.catch_up`)."""
        self.scripts: dict[str, Script] = {}
        self.resync_hooks: list[ResyncHook] = []
        """Run in order after every AMI (re)connect; the tracker's resync is first (after
        the gap's events, once, with `gap_events`)."""
        self.site_parts: Sequence[SitePart] = default_site_parts()
        self.services: dict[str, Any] = {}
        """Services features publish, by name (see `ccrouter.runtime.Daemon`)."""
        self.gauges: list[Gauge] = []
        """Figures features publish: the metrics and the system-wide alert kinds read them."""
        self.ivr_ends: dict[str, Any] = {}
        """Ends of the IVR other features provide, by name (`ccrouter.ivr.service.EndAction`)."""
        self.operators: Any = None
        self.membership: Any = None
        """The routing feature's services, when installed."""
        self.helpdesk: Any = None
        """The helpdesk feature's ticket service, when installed."""
        self.qc: Any = None
        """The qc feature's live-listening service, when installed."""
        self.stop_hooks: list[Callable[[], Awaitable[None]]] = []
        """Run first at `stop()`, in reverse order (e.g. close an HTTP site)."""

    async def start(self) -> None:
        s = self.settings
        log.info("ccrouter_starting", database=s.database.url)
        if not s.ami.secret:
            log.warning("ami_secret_empty", user=s.ami.username,
                        fix="set CCROUTER_AMI_SECRET to the secret of the AMI user in "
                            "manager.conf: ccrouter will log in with an empty one")  # fmt: skip
        await self._open_database()
        node = s.asterisk.node
        self.writer = CardWriter(self.engine, s.database, numbers=self.numbers, node=node)
        book = CallBook(
            new_number=self.numbers.next,
            short_abandon_s=s.calls.short_abandon_s,
            close_grace_s=s.calls.close_grace_s,
        )
        open_cards = await self.store.open_cards(node, unnamed=s.asterisk.owns_unnamed)
        book.restore(open_cards, now=time.time())
        if open_cards:
            log.info("open_cards_restored", count=len(open_cards))
        self.tracker = CallTracker(book, self.writer)
        self.router = Router(routing_table(s), self.tracker)
        self.ami = AmiClient(s.ami, on_event=self.tracker.on_ami_event,
                             on_connected=self._ami_connected)  # fmt: skip
        if self.gap_events is not None:
            self.tracker.hold()
            self.resync_hooks.append(self._catch_up)
        self.resync_hooks.append(self.tracker.resync)
        self.scripts[SCRIPT_ROUTE] = functools.partial(route, router=self.router)
        self.scripts[SCRIPT_PING] = ping  # `ccrouter doctor`'s test call
        self.spawn("card_writer", self.writer.run())
        self.spawn("tracker_sweeper", self.tracker.run())
        for install in self._features:
            await install(self)
        self.agi = AgiServer(self.scripts, s.agi)
        # before AMI: a taken port never meets the PBX
        self.agi_address = await self.agi.start(self.agi_sockets)
        self.spawn("ami", self.ami.run())
        log.info("ccrouter_started", agi=f"{self.agi_address[0]}:{self.agi_address[1]}",
                 ami=f"{s.ami.host}:{s.ami.port}", database=s.database.url)  # fmt: skip

    async def _open_database(self) -> None:
        """The engine, migrated, and what start-up reads from it; a database that cannot be
        opened or written is a StartupError naming the URL and the driver's reason."""
        url = self.settings.database.url
        try:
            self.engine = make_engine(url)
            if not self._migrated:
                await migrate(self.engine)
            self.store = CardStore(self.engine)
            self.numbers = await CardNumbers.open(self.engine)
        except DBAPIError as exc:
            raise StartupError(f"database {url}: {exc.orig}") from exc
        except (OSError, SQLAlchemyError) as exc:
            raise StartupError(f"database {url}: {exc}") from exc

    async def _catch_up(self, ami: AmiClient) -> None:
        """The first resync, before the tracker's: the gap's events (see `gap_events`)."""
        source, self.gap_events = self.gap_events, None
        if source is None:
            return
        watched: Sequence[tuple[float, Mapping[str, Any]]] = ()
        try:
            watched = await source()
        except Exception as exc:  # the gap is lost, as without a standby; the rest goes on
            log.error("ami_gap_events_failed", error=str(exc) or repr(exc))
        self.tracker.catch_up(watched)

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
        """Stop what started; safe after a partial or failed `start()`."""
        self._stopping = True
        for hook in reversed(self.stop_hooks):
            await hook()
        if hasattr(self, "agi"):
            await self.agi.close()
        await cancel_all([t for t in self._tasks if t.get_name() != "card_writer"])
        written = 0
        if hasattr(self, "writer"):
            try:
                async with asyncio.timeout(self.settings.database.write_retry_s * 10):
                    await self.writer.close()
            except TimeoutError:
                log.error("card_writer_close_timeout", pending=self.writer.stats.queue_depth)
            written = self.writer.stats.rows_written
        await cancel_all(self._tasks)
        if hasattr(self, "store"):
            await self.store.close()
        if hasattr(self, "engine"):
            await self.engine.dispose()
        log.info("ccrouter_stopped", card_writes=written)  # inserts and updates, not cards


async def cancel_all(tasks: Sequence[asyncio.Task[None]]) -> None:
    """Cancel `tasks` and wait for them. One still running after a cancel (on 3.11
    `asyncio.wait_for` can swallow one) is cancelled again, so stopping cannot hang on it."""
    pending = {t for t in tasks if not t.done()}
    for _ in range(_CANCEL_ROUNDS):
        if not pending:
            return
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=_CANCEL_WAIT_S)
    for task in pending:
        log.error("task_ignores_cancel", task=task.get_name())


def settle_heap() -> None:
    """After start-up: move what start-up built (modules, config, the operator floor) out of
    the cyclic GC's sight, so its full collections stay short under load (gc.freeze)."""
    gc.collect()
    gc.freeze()


async def serve(settings: Settings, stop: asyncio.Event) -> int:
    """Run the daemon until `stop` is set (0) or a task dies (1). `stop` set during start-up
    cancels it (0); a start-up failure is logged with its reason (1). Either way whatever had
    started is stopped."""
    app = App(settings)
    try:
        try:
            started = await run_unless(stop, app.start())
        except Exception as exc:
            start_failed(exc)
            return 1
        if started:
            settle_heap()
            await run_unless(stop, app.failed.wait())
    finally:
        await app.stop()
    return 1 if app.failed.is_set() else 0


async def run_unless(stop: asyncio.Event, coro: Coroutine[Any, Any, Any]) -> bool:
    """Run `coro` unless `stop` is set first (then `coro` is cancelled): whether it finished.
    Its exception, if it raised, is raised here."""
    task = asyncio.ensure_future(coro)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        finished = task.done()
        if not finished:
            await cancel_all([task])
            if task.done() and not task.cancelled():
                task.exception()  # what it raised while being stopped does not matter
    if finished:
        task.result()
    return finished


def start_failed(exc: Exception) -> None:
    expected = isinstance(exc, StartupError | ListenError)
    log.error("ccrouter_start_failed", error=str(exc) or repr(exc), exc_info=not expected)


async def _main(settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    code = await serve(settings, stop)
    await _leave_leftover_tasks(code)
    return code


async def _leave_leftover_tasks(code: int) -> None:
    """Exit now (`os._exit`) when a task outlives the stop by `_LEFTOVER_GRACE_S`.

    A SQLite call waiting for another process's lock (the busy timeout) is C code in
    aiosqlite's thread and cannot be cancelled. When start-up is cancelled during one,
    SQLAlchemy closes that connection in a shielded task that waits for the thread, and
    `asyncio.run` would wait for that task. Nothing is lost by not waiting: the stop has run,
    and the abandoned call's transaction was never committed."""
    current = asyncio.current_task()
    others = [t for t in asyncio.all_tasks() if t is not current]
    if not others:
        return
    _, pending = await asyncio.wait(others, timeout=_LEFTOVER_GRACE_S)
    if pending:
        _exit_now(code, tasks=sorted(getattr(t.get_coro(), "__qualname__", t.get_name())
                                     for t in pending))  # fmt: skip


def run(coro: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop where it is installed (about 2.5x the FastAGI throughput), else asyncio."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(coro)
    return int(uvloop.run(coro))


def main(settings: Settings) -> int:
    configure_logging(settings.log)
    code = run(_main(settings))
    _exit_without_stuck_threads(code)
    return code


def _exit_without_stuck_threads(code: int) -> None:
    """Exit now (`os._exit`) when a thread outlives the stop by `_LEFTOVER_GRACE_S`: the
    thread of a SQLite connection abandoned mid-call (see `_leave_leftover_tasks`) is not a
    daemon, and the interpreter would wait for it at exit."""
    deadline = time.monotonic() + _LEFTOVER_GRACE_S
    stuck = []
    for thread in threading.enumerate():
        if thread is threading.current_thread() or thread.daemon:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            stuck.append(thread.name)
    if stuck:
        _exit_now(code, threads=stuck)


def _exit_now(code: int, **leftovers: list[str]) -> None:
    log.warning("exit_without_waiting", **leftovers)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

"""What the running daemon offers the features: the one interface they depend on.

`ccrouter.app.App` is the daemon; features are written against `Daemon` (a Protocol), never
against `App`, so no feature imports the wiring and the wiring is the only module that imports
every feature. A feature is `async def install(daemon: Daemon) -> None`: it registers AGI
scripts, spawns its tasks, adds AMI resync and stop hooks, publishes figures (`daemon.gauges`:
the metrics and the alert rules read them) and may publish a service for others
(`daemon.services`, `daemon.operators`, `daemon.membership`).

The web site is assembled from `site_parts`: each feature's `http.site(daemon, ctx)` adds its
endpoints (and what it shows on the site) when the web feature starts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from ccrouter.calls.numbers import CardNumbers
    from ccrouter.calls.store import CardStore
    from ccrouter.calls.tracker import CallTracker
    from ccrouter.calls.writer import CardWriter
    from ccrouter.config import Settings
    from ccrouter.pbx.agi.server import AgiServer, Script
    from ccrouter.pbx.ami.connection import AmiClient

ResyncHook = Callable[["AmiClient"], Awaitable[None]]
"""Run after every AMI (re)connect, in the order added; the tracker's resync is first."""

SitePart = Callable[[Any, Any], Awaitable[list[Any]]]
"""`async def site(daemon, ctx: web.context.WebContext) -> list[web.api.Endpoint]`."""


@dataclass(frozen=True, slots=True)
class Gauge:
    """A figure about now that a feature publishes: `/metrics` exports it as the gauge
    `metric`, and an alert rule of kind `alert_kind` (when given) fires while it is above the
    rule's threshold, saying "<value> <alert_what> (limit <threshold>)"."""

    metric: str
    help: str
    read: Callable[[], int]
    alert_kind: str | None = None
    alert_what: str = ""


class Daemon(Protocol):
    settings: Settings
    engine: AsyncEngine
    store: CardStore
    numbers: CardNumbers
    writer: CardWriter
    tracker: CallTracker
    ami: AmiClient
    agi: AgiServer
    router: Any
    """`ccrouter.routing.router.Router`: routes a call (the route script, the IVR, features)."""
    scripts: dict[str, Script]
    resync_hooks: list[ResyncHook]
    stop_hooks: list[Callable[[], Awaitable[None]]]
    site_parts: Sequence[SitePart]
    services: dict[str, Any]
    """Services features publish, by name, for the CLI, tests and each other's declared seams."""
    gauges: list[Gauge]
    """Figures features publish (metrics, system-wide alert kinds)."""
    ivr_ends: dict[str, Any]
    """Ends of the IVR other features provide, by name (`ccrouter.ivr.service.EndAction`)."""
    operators: Any
    membership: Any
    """The routing feature's operator state and membership services, when installed."""
    helpdesk: Any
    """The helpdesk feature's ticket service, when installed (its endpoints use it)."""
    qc: Any
    """The qc feature's live-listening service, when installed (its endpoints use it)."""

    def spawn(self, name: str, coro: Coroutine[Any, Any, None]) -> None: ...


Feature = Callable[[Daemon], Awaitable[None]]

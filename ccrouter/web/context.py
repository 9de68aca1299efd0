"""What the endpoint modules share: the daemon's services and the web feature's own objects.

Features' `http.site(daemon, ctx)` parts get this context; what a feature shows on the site
itself (the KPIs on the wallboard, the alerts) it hangs here through a small Protocol, so the
site never imports a feature."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ccrouter.config.schema import AlertSettings, Operator, Settings
from ccrouter.web.auth import mask_number
from ccrouter.web.live import LiveModel
from ccrouter.web.streams import Hub

if TYPE_CHECKING:
    from ccrouter.runtime import Daemon


class KpiView(Protocol):
    """The reports feature's KPIs, as the wallboard and the alerts read them."""

    async def per_queue(
        self, start: float, end: float, queues: Sequence[str] = (), where: Sequence[Any] = ()
    ) -> Mapping[str, Any]: ...

    async def today(self, now: float) -> dict[str, dict[str, Any]]:
        """Per queue, today's KPIs (from local midnight) as JSON-ready dicts."""
        ...

    async def kpi_counts(
        self, start: float, end: float, *, queues: Sequence[str] = (),
        interval: Literal["hour", "day"] = "hour", where: Sequence[Any] = (),
    ) -> Any: ...

    async def today_by_team(
        self, now: float, teams: Mapping[str, Sequence[str]]
    ) -> dict[str, dict[str, Any]]:
        """Per team (name -> its operators' interfaces), today's KPIs as JSON-ready dicts."""
        ...


class AlertsView(Protocol):
    """The alerts feature's service, as the wallboard, metrics and reload see it."""

    def active(self) -> list[Any]: ...

    def reconfigure(self, settings: AlertSettings, timezone: str) -> None: ...

NUMBER_FIELDS = ("caller_num",)


@dataclass(slots=True)
class WebContext:
    app: Daemon
    settings: Settings
    live: LiveModel
    hub: Hub
    reports: KpiView | None = None
    alerts: AlertsView | None = None
    alert_webhook: bool = False
    """The alerts' webhook sender runs (a reload that adds a webhook URL needs a restart)."""
    reload_hooks: list[Callable[[Settings], None]] = field(default_factory=list)
    """Called with the new settings after an admin config reload."""
    team_boards: dict[str, frozenset[str]] = field(default_factory=dict)
    """Wallboard topic -> teams, for every team wallboard ever asked for (published while
    someone watches it)."""
    cluster_live: Any = None
    """With several nodes: `web.cluster_live.ClusterLive` (the other nodes' live rows)."""
    self_authenticated: list[tuple[str, str, str, Any]] = field(default_factory=list)
    """(method, path, summary, aiohttp handler) of routes that take no token because they
    check the caller themselves (the helpdesk's signed status webhook)."""
    _indexed: tuple[Settings | None, dict[str, Operator], dict[str, Operator]] = field(
        default=(None, {}, {}), init=False, repr=False)  # fmt: skip
    """(the settings indexed, by id, by interface): rebuilt when a reload replaces them."""

    def _index(self) -> tuple[dict[str, Operator], dict[str, Operator]]:
        indexed, by_id, by_iface = self._indexed
        if indexed is not self.settings:  # a lookup per member event: no scan of 5 000
            ops = self.settings.operators
            by_id = {o.id: o for o in reversed(ops)}  # the first wins, as a scan would
            by_iface = {o.interface: o for o in reversed(ops)}
            self._indexed = (self.settings, by_id, by_iface)
        return by_id, by_iface

    def operator(self, op_id: str) -> Operator | None:
        return self._index()[0].get(op_id)

    def operator_by_interface(self, interface: str) -> Operator | None:
        return self._index()[1].get(interface)

    def queue_names(self) -> list[str]:
        return [t.queue_name for t in self.settings.targets]

    def to_epoch(self, value: dt.datetime) -> float:
        """A datetime from a query: naive ones are local time (reports.timezone)."""
        if value.tzinfo is None:
            value = value.replace(tzinfo=zoneinfo.ZoneInfo(self.settings.reports.timezone))
        return value.timestamp()


def card_out(card: dict[str, Any], mask: bool) -> dict[str, Any]:
    """A card as the API shows it (numbers masked for masked roles)."""
    out = dict(card)
    if mask:
        for key in NUMBER_FIELDS:
            out[key] = mask_number(out.get(key))
    return out

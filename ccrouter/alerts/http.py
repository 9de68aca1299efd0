"""The alerts' part of the site: the alert service (fed by the wallboard's live model, the AMI
client, the reports' KPIs and the gauges features publish), its webhook sender, and
`GET /api/v1/alerts`."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ccrouter.alerts.model import Reading
from ccrouter.alerts.service import AlertService, LiveSource
from ccrouter.db.tables import cards_of_node
from ccrouter.web.api import STAFF, Call, Endpoint
from ccrouter.web.context import WebContext

if TYPE_CHECKING:
    from ccrouter.runtime import Daemon


def live_source(daemon: Daemon, ctx: WebContext) -> LiveSource:
    def longest() -> dict[str, float]:
        return {v.queue: v.longest_wait_s for v in ctx.live.queues(time.time())}

    def logged_in() -> dict[str, int]:
        return {v.queue: v.logged_in for v in ctx.live.queues(time.time())}

    def down_since() -> float | None:
        return None if daemon.ami.connected else daemon.ami.disconnected_since

    def readings() -> dict[str, Reading]:
        return {g.alert_kind: Reading(g.read(), g.alert_what)
                for g in daemon.gauges if g.alert_kind}  # fmt: skip

    return LiveSource(ctx.queue_names, longest, logged_in, down_since, readings)


async def site(daemon: Daemon, ctx: WebContext) -> list[Endpoint]:
    s = ctx.settings
    if s.alerts.rules and ctx.reports is not None:
        reports = ctx.reports
        node = s.asterisk.node if s.cluster.enabled else None
        # With several nodes: this node's alerts, from its live state and its calls' SL.
        mine = [] if node is None else [cards_of_node(node, first=s.asterisk.owns_unnamed)]

        async def sl_counts(start: float, end: float, queues: Sequence[str]) -> Any:
            return await reports.per_queue(start, end, queues, where=mine)

        alerts = AlertService(s.alerts, daemon.engine, live_source(daemon, ctx), sl_counts,
                              timezone=s.reports.timezone, node=node)  # fmt: skip
        await alerts.load()
        ctx.alerts = alerts
        daemon.spawn("alerts", alerts.run())
        if s.alerts.webhook.url:
            ctx.alert_webhook = True
            daemon.spawn("alerts_webhook", alerts.run_webhook())

    async def active(_: Call) -> Any:
        return [dataclasses.asdict(a) for a in (ctx.alerts.active() if ctx.alerts else [])]

    return [Endpoint("GET", "/api/v1/alerts", "Alerts firing now", active, STAFF)]

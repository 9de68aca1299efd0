"""`/api/v1/reports/kpi`: SL, ASA, AAR, handled %, CSAT, card completion and after-call time
per queue, operator, team and interval, hourly load with an Erlang C staffing estimate; JSON
or CSV (built by `ccrouter.reports.report` for the token's scope)."""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any, Final, Literal

from aiohttp import web
from pydantic import Field

from ccrouter.config import Settings
from ccrouter.config.asterisk import NODE_NAME
from ccrouter.reports.report import build_report, csv_text
from ccrouter.reports.store import Reports, local_midnight
from ccrouter.web.api import STAFF, ApiError, Call, Endpoint, Input, Scoping, bad_request
from ccrouter.web.auth import Role
from ccrouter.web.context import WebContext
from ccrouter.web.scope import visible_queues

if TYPE_CHECKING:
    from ccrouter.runtime import Daemon

MAX_PERIOD_S: Final = 366 * 86400


class KpiQuery(Input):
    from_: dt.datetime | None = Field(default=None, alias="from",
                                      description="start (ISO 8601 or epoch s); default: "
                                      "today 00:00 local")
    to: dt.datetime | None = Field(default=None, description="end (exclusive); default: now")
    queue: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,80}$")
    interval: Literal["hour", "day"] = "hour"
    format: Literal["json", "csv"] | None = None
    node: str | None = Field(default=None, pattern=NODE_NAME,
                             description="with several Asterisk nodes: only this node's calls")


async def kpi_report(ctx: WebContext, call: Call) -> Any:
    q: KpiQuery = call.query
    s = ctx.settings.reports
    now = time.time()
    start = ctx.to_epoch(q.from_) if q.from_ else local_midnight(s.timezone, now)
    end = ctx.to_epoch(q.to) if q.to else now
    if end <= start:
        raise bad_request("to", "to: must be after from")
    if end - start > MAX_PERIOD_S:
        raise bad_request("to", "to: the period is limited to 366 days")
    if q.queue and q.queue not in ctx.queue_names():
        raise bad_request("queue", f"queue: unknown queue {q.queue!r}")
    if q.node is not None:
        nodes = ctx.settings.asterisk.names()
        if q.node not in nodes:
            raise bad_request("node", f"node: unknown node {q.node!r}; "
                                      f"declared: {', '.join(nodes)}")
    queues = visible_queues(call.who, ctx.settings)
    if q.queue and queues is not None and q.queue not in queues:
        raise ApiError(403, f"queue {q.queue!r} is outside this token's scope")
    assert ctx.reports is not None  # set by `site`
    report = await build_report(ctx.settings, ctx.reports, call.who, start, end, queue=q.queue,
                                interval=q.interval, node=q.node)  # fmt: skip
    wants_csv = q.format == "csv" or (
        q.format is None and "text/csv" in call.request.headers.get("Accept", "")
    )
    if not wants_csv:
        return report
    return web.Response(text=csv_text(report), content_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="kpi.csv"'})


def endpoints(ctx: WebContext) -> list[Endpoint]:
    return [
        Endpoint("GET", "/api/v1/reports/kpi", "SL, ASA, AAR, CSAT per queue/operator/interval, "
                 "hourly load and Erlang C staffing (JSON, or CSV with Accept: text/csv or "
                 "?format=csv); card completion and after-call time per operator and team",
                 lambda c: kpi_report(ctx, c), STAFF | {Role.VIEWER}, KpiQuery, csv=True,
                 scope=Scoping.FILTERED),
    ]


async def site(daemon: Daemon, ctx: WebContext) -> list[Endpoint]:
    """The reports' part of the site: the KPI endpoint and the wallboard's KPIs of today."""

    def reports(s: Settings) -> Reports:
        return Reports(daemon.engine, sl_threshold_s=s.reports.sl_threshold_s,
                       timezone=s.reports.timezone,
                       card_deadline_s=s.reports.card_deadline_s)  # fmt: skip

    def reconfigure(new: Settings) -> None:
        ctx.reports = reports(new)

    ctx.reports = reports(ctx.settings)
    ctx.reload_hooks.append(reconfigure)
    return endpoints(ctx)

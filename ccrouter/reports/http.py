"""`/api/v1/reports/kpi`: SL, ASA, AAR, handled %, CSAT, card completion and after-call time
per queue, operator, team and interval, hourly load with an Erlang C staffing estimate; JSON
or CSV. A team supervisor's report counts the calls its teams' operators answered; a viewer's
the calls of its product lines / targets (no operator or team rows: those are the centre's)."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import time
import zoneinfo
from typing import TYPE_CHECKING, Any, Final, Literal

from aiohttp import web
from pydantic import Field

from ccrouter.config import Settings
from ccrouter.config.asterisk import NODE_NAME
from ccrouter.db.tables import cards_of_node
from ccrouter.reports.model import Counts, Kpi, add, agents_needed, kpi, kpi_dict
from ccrouter.reports.store import Reports, local_midnight
from ccrouter.web.api import STAFF, ApiError, Call, Endpoint, Input, Scoping, bad_request
from ccrouter.web.auth import Role
from ccrouter.web.context import WebContext
from ccrouter.web.scope import card_conditions, visible_queues

if TYPE_CHECKING:
    from ccrouter.runtime import Daemon

MAX_PERIOD_S: Final = 366 * 86400
KPI_FIELDS: Final = tuple(f.name for f in dataclasses.fields(Kpi))
CSV_COLUMNS: Final = ("section", "key", "start", *KPI_FIELDS, "agents_needed")


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


def _iso(ts: float, tz: str) -> str:
    return dt.datetime.fromtimestamp(ts, zoneinfo.ZoneInfo(tz)).isoformat()


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
    where = [*card_conditions(call.who)]
    if q.node is not None:
        nodes = ctx.settings.asterisk.names()
        if q.node not in nodes:
            raise bad_request("node", f"node: unknown node {q.node!r}; "
                                      f"declared: {', '.join(nodes)}")
        where.append(cards_of_node(q.node, first=q.node == nodes[0]))
    who = call.who
    queues = visible_queues(who, ctx.settings)
    if q.queue and queues is not None and q.queue not in queues:
        raise ApiError(403, f"queue {q.queue!r} is outside this token's scope")
    assert ctx.reports is not None  # set by `site`
    counts = await ctx.reports.kpi_counts(start, end, queues=[q.queue] if q.queue else [],
                                          interval=q.interval,
                                          where=where)  # fmt: skip
    total = kpi(counts.total)
    names = {o.interface: o.id for o in ctx.settings.operators}
    inside = who.role is not Role.VIEWER
    hourly = []
    for b in counts.hours:
        staff = None
        if total.aht_s:
            st = agents_needed(b.counts.offered, 3600, total.aht_s, s.target_sl, s.sl_threshold_s)
            staff = {"agents": st.agents, "traffic_erlangs": round(st.traffic_erlangs, 3),
                     "service_level": round(st.service_level, 4), "asa_s": round(st.asa_s, 1)}
        hourly.append({"start": _iso(b.start, s.timezone), "offered": b.counts.offered,
                       "staffing": staff})
    report = {
        "from": _iso(start, s.timezone), "to": _iso(end, s.timezone), "interval": q.interval,
        "queue": q.queue, "node": q.node, "sl_threshold_s": s.sl_threshold_s,
        "target_sl": s.target_sl,
        "total": kpi_dict(counts.total),
        "queues": [{"queue": name, **kpi_dict(c)} for name, c in sorted(counts.queues.items())],
        "card_deadline_s": s.card_deadline_s,
        "operators": [
            {"operator": name, "interface": iface, "operator_id": names.get(iface), **kpi_dict(c)}
            for (name, iface), c in sorted(counts.operators.items())
        ] if inside else [],
        "teams": team_rows(ctx, counts.operators, who.teams) if inside else [],
        "intervals": [{"start": _iso(b.start, s.timezone), **kpi_dict(b.counts)}
                      for b in counts.intervals],
        "hourly": hourly,
    }
    wants_csv = q.format == "csv" or (
        q.format is None and "text/csv" in call.request.headers.get("Accept", "")
    )
    return _csv(report) if wants_csv else report


def team_counts(
    ctx: WebContext, by_interface: dict[str, Counts], only: frozenset[str] | None = None
) -> dict[str, Counts]:
    """Per team (`teams:`), its operators' counts summed (`only`: these teams)."""
    iface = {o.id: o.interface for o in ctx.settings.operators}
    out: dict[str, Counts] = {}
    for team in ctx.settings.teams:
        if only is not None and team.name not in only:
            continue
        total = Counts()
        for op in dict.fromkeys(team.operators):
            total = add(total, by_interface.get(iface.get(op, ""), Counts()))
        out[team.name] = total
    return out


def team_rows(ctx: WebContext, operators: dict[tuple[str, str], Counts],
              only: frozenset[str] | None) -> list[dict[str, Any]]:  # fmt: skip
    by_interface: dict[str, Counts] = {}
    for (_, iface), c in operators.items():
        by_interface[iface] = add(by_interface.get(iface, Counts()), c)
    return [{"team": name, **kpi_dict(c)}
            for name, c in team_counts(ctx, by_interface, only).items()]


def _csv(report: dict[str, Any]) -> web.Response:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)

    def row(section: str, key: str, start: str, values: dict[str, Any], agents: Any = "") -> None:
        w.writerow([section, key, start, *("" if values.get(k) is None else values[k]
                                           for k in KPI_FIELDS), agents])

    row("total", "", report["from"], report["total"])
    for r in report["queues"]:
        row("queue", r["queue"], report["from"], r)
    for r in report["operators"]:
        row("operator", r["operator_id"] or r["interface"], report["from"], r)
    for r in report["teams"]:
        row("team", r["team"], report["from"], r)
    for r in report["intervals"]:
        row(report["interval"], "", r["start"], r)
    for r in report["hourly"]:
        agents = r["staffing"]["agents"] if r["staffing"] else ""
        row("hourly_load", "", r["start"], {"offered": r["offered"]}, agents)
    return web.Response(text=buf.getvalue(), content_type="text/csv",
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

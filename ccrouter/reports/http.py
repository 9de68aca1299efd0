"""`/api/v1/reports/kpi`: SL, ASA, AAR, handled %, CSAT per queue, operator and interval,
hourly load with an Erlang C staffing estimate; JSON or CSV."""

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
from ccrouter.reports.model import Kpi, agents_needed, kpi, kpi_dict
from ccrouter.reports.store import Reports, local_midnight
from ccrouter.web.api import STAFF, Call, Endpoint, Input, bad_request
from ccrouter.web.context import WebContext

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
    assert ctx.reports is not None  # set by `site`
    counts = await ctx.reports.kpi_counts(start, end, queues=[q.queue] if q.queue else [],
                                          interval=q.interval)  # fmt: skip
    total = kpi(counts.total)
    names = {o.interface: o.id for o in ctx.settings.operators}
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
        "queue": q.queue, "sl_threshold_s": s.sl_threshold_s, "target_sl": s.target_sl,
        "total": kpi_dict(counts.total),
        "queues": [{"queue": name, **kpi_dict(c)} for name, c in sorted(counts.queues.items())],
        "operators": [
            {"operator": name, "interface": iface, "operator_id": names.get(iface), **kpi_dict(c)}
            for (name, iface), c in sorted(counts.operators.items())
        ],
        "intervals": [{"start": _iso(b.start, s.timezone), **kpi_dict(b.counts)}
                      for b in counts.intervals],
        "hourly": hourly,
    }
    wants_csv = q.format == "csv" or (
        q.format is None and "text/csv" in call.request.headers.get("Accept", "")
    )
    return _csv(report) if wants_csv else report


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
                 "?format=csv)", lambda c: kpi_report(ctx, c), STAFF, KpiQuery, csv=True),
    ]


async def site(daemon: Daemon, ctx: WebContext) -> list[Endpoint]:
    """The reports' part of the site: the KPI endpoint and the wallboard's KPIs of today."""

    def reports(s: Settings) -> Reports:
        return Reports(daemon.engine, sl_threshold_s=s.reports.sl_threshold_s,
                       timezone=s.reports.timezone)  # fmt: skip

    def reconfigure(new: Settings) -> None:
        ctx.reports = reports(new)

    ctx.reports = reports(ctx.settings)
    ctx.reload_hooks.append(reconfigure)
    return endpoints(ctx)

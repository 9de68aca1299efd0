"""The KPI report as `/api/v1/reports/kpi` answers it, for a principal's scope: the JSON-ready
dict and its CSV. The endpoint and the scheduled report mail (`ccrouter.digest`) both build it
here, so a mailed CSV is byte for byte the endpoint's for the same scope and period.

A team supervisor's report counts the calls its teams' operators answered; a viewer's the
calls of its product lines / targets (no operator or team rows: those are the centre's).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import zoneinfo
from typing import Any, Final

from ccrouter.config import Settings
from ccrouter.db.tables import cards_of_node
from ccrouter.reports.model import Counts, Kpi, add, agents_needed, kpi, kpi_dict
from ccrouter.reports.store import Interval
from ccrouter.web.auth import Principal, Role
from ccrouter.web.context import KpiView
from ccrouter.web.scope import card_conditions

KPI_FIELDS: Final = tuple(f.name for f in dataclasses.fields(Kpi))
CSV_COLUMNS: Final = ("section", "key", "start", *KPI_FIELDS, "agents_needed")


def iso(ts: float, tz: str) -> str:
    return dt.datetime.fromtimestamp(ts, zoneinfo.ZoneInfo(tz)).isoformat()


async def build_report(
    settings: Settings, reports: KpiView, who: Principal, start: float, end: float, *,
    queue: str | None = None, interval: Interval = "hour", node: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The report of calls started in [start, end) that `who` may see (`card_conditions`).
    `queue`: only that queue; `node`: a declared node's calls only."""
    s = settings.reports
    where = [*card_conditions(who)]
    if node is not None:
        where.append(cards_of_node(node, first=settings.asterisk.is_first(node)))
    counts = await reports.kpi_counts(start, end, queues=[queue] if queue else [],
                                      interval=interval, where=where)  # fmt: skip
    total = kpi(counts.total)
    names = {o.interface: o.id for o in settings.operators}
    inside = who.role is not Role.VIEWER
    hourly = []
    for b in counts.hours:
        staff = None
        if total.aht_s:
            st = agents_needed(b.counts.offered, 3600, total.aht_s, s.target_sl, s.sl_threshold_s)
            staff = {"agents": st.agents, "traffic_erlangs": round(st.traffic_erlangs, 3),
                     "service_level": round(st.service_level, 4), "asa_s": round(st.asa_s, 1)}
        hourly.append({"start": iso(b.start, s.timezone), "offered": b.counts.offered,
                       "staffing": staff})
    return {
        "from": iso(start, s.timezone), "to": iso(end, s.timezone), "interval": interval,
        "queue": queue, "node": node, "sl_threshold_s": s.sl_threshold_s,
        "target_sl": s.target_sl,
        "total": kpi_dict(counts.total),
        "queues": [{"queue": name, **kpi_dict(c)} for name, c in sorted(counts.queues.items())],
        "card_deadline_s": s.card_deadline_s,
        "operators": [
            {"operator": name, "interface": iface, "operator_id": names.get(iface), **kpi_dict(c)}
            for (name, iface), c in sorted(counts.operators.items())
        ] if inside else [],
        "teams": team_rows(settings, counts.operators, who.teams) if inside else [],
        "intervals": [{"start": iso(b.start, s.timezone), **kpi_dict(b.counts)}
                      for b in counts.intervals],
        "hourly": hourly,
    }  # fmt: skip


def team_counts(
    settings: Settings, by_interface: dict[str, Counts], only: frozenset[str] | None = None
) -> dict[str, Counts]:
    """Per team (`teams:`), its operators' counts summed (`only`: these teams)."""
    iface = {o.id: o.interface for o in settings.operators}
    out: dict[str, Counts] = {}
    for team in settings.teams:
        if only is not None and team.name not in only:
            continue
        total = Counts()
        for op in dict.fromkeys(team.operators):
            total = add(total, by_interface.get(iface.get(op, ""), Counts()))
        out[team.name] = total
    return out


def team_rows(settings: Settings, operators: dict[tuple[str, str], Counts],
              only: frozenset[str] | None) -> list[dict[str, Any]]:  # fmt: skip
    by_interface: dict[str, Counts] = {}
    for (_, iface), c in operators.items():
        by_interface[iface] = add(by_interface.get(iface, Counts()), c)
    return [{"team": name, **kpi_dict(c)}
            for name, c in team_counts(settings, by_interface, only).items()]


def csv_text(report: dict[str, Any]) -> str:
    """The report as CSV: one row per total, queue, operator, team, interval and hour."""
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
    return buf.getvalue()

"""The report mail's body: KPI tables per queue, per team and per hour, and a chart of the
hourly load and service level as inline SVG built here (no plotting library). Pure: it reads
the report dict of `ccrouter.reports.report.build_report`.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from typing import Any, Final

COLUMNS: Final = (
    ("offered", "Offered", "n"), ("answered", "Answered", "n"), ("abandoned", "Abandoned", "n"),
    ("sl", "SL", "%"), ("asa_s", "ASA s", "s"), ("aar", "Abandon rate", "%"),
    ("aht_s", "AHT s", "s"), ("csat", "CSAT", "%"), ("card_completion", "Cards in time", "%"),
    ("acw_s", "ACW s", "s"),
)  # fmt: skip
"""(KPI key, column title, how it is shown) of every KPI table."""
CHART_W: Final = 720
CHART_H: Final = 240
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 40, 44, 16, 28


def cell(value: Any, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "%":
        return f"{value * 100:.1f}%"
    if kind == "s":
        return f"{value:.0f}"
    return str(value)


def _table(title: str, key_title: str, rows: Sequence[tuple[str, dict[str, Any]]]) -> str:
    head = "".join(f"<th>{html.escape(t)}</th>" for _, t, _ in COLUMNS)
    body = "".join(
        f"<tr><td>{html.escape(key)}</td>"
        + "".join(f'<td class="n">{cell(r.get(k), kind)}</td>' for k, _, kind in COLUMNS)
        + "</tr>"
        for key, r in rows
    )
    return (f"<h2>{html.escape(title)}</h2>\n<table><tr><th>{html.escape(key_title)}</th>"
            f"{head}</tr>{body}</table>\n")  # fmt: skip


def hours(report: dict[str, Any]) -> list[tuple[dt.datetime, dict[str, Any]]]:
    """Every hour of the period (also those without calls) with its interval row ({} when
    none), in order."""
    start = dt.datetime.fromisoformat(report["from"])
    end = dt.datetime.fromisoformat(report["to"])
    rows = {dt.datetime.fromisoformat(r["start"]): r for r in report["intervals"]}
    out = []
    at = start
    while at < end:
        out.append((at, rows.get(at, {})))
        at = (at.astimezone(dt.UTC) + dt.timedelta(hours=1)).astimezone(start.tzinfo)
    return out


def chart_svg(report: dict[str, Any]) -> str:
    """Bars: calls offered per hour (left axis); line: the hour's service level (right axis,
    0-100 %); hours without answered-or-abandoned calls have no SL point."""
    slots = hours(report)
    n = max(len(slots), 1)
    top = max([int(r.get("offered") or 0) for _, r in slots] + [1])
    w, h = CHART_W - _PAD_L - _PAD_R, CHART_H - _PAD_T - _PAD_B
    bw = w / n
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_W}" height="{CHART_H}" '
             f'viewBox="0 0 {CHART_W} {CHART_H}" role="img" '
             'aria-label="Calls offered and service level per hour" '
             'font-family="sans-serif" font-size="10">',
             "<title>Calls offered and service level per hour</title>",
             f'<rect x="{_PAD_L}" y="{_PAD_T}" width="{w}" height="{h}" fill="#fafafa" '
             'stroke="#ccc"/>']  # fmt: skip
    for frac in (0.0, 0.5, 1.0):
        y = _PAD_T + h - frac * h
        parts.append(f'<text x="{_PAD_L - 4}" y="{y + 3:.1f}" text-anchor="end">'
                     f"{round(top * frac)}</text>")  # fmt: skip
        parts.append(f'<text x="{_PAD_L + w + 4}" y="{y + 3:.1f}">{round(frac * 100)}%</text>')
    points = []
    every = max(1, n // 12)
    for i, (at, r) in enumerate(slots):
        x = _PAD_L + i * bw
        offered = int(r.get("offered") or 0)
        bh = offered / top * h
        if offered:
            parts.append(f'<rect class="load" x="{x + bw * 0.1:.1f}" y="{_PAD_T + h - bh:.1f}" '
                         f'width="{bw * 0.8:.1f}" height="{bh:.1f}" fill="#4a7ebb">'
                         f"<title>{at:%a %H}:00 offered {offered}</title></rect>")  # fmt: skip
        if r.get("sl") is not None:
            points.append(f"{x + bw / 2:.1f},{_PAD_T + h - float(r['sl']) * h:.1f}")
        if i % every == 0:
            label = f"{at:%H}" if n <= 24 else f"{at:%a %H}"
            parts.append(f'<text x="{x + bw / 2:.1f}" y="{CHART_H - 10}" '
                         f'text-anchor="middle">{label}</text>')  # fmt: skip
    if points:
        parts.append(f'<polyline class="sl" points="{" ".join(points)}" fill="none" '
                     'stroke="#d9534f" stroke-width="2"/>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


STYLE: Final = ("body{font-family:sans-serif;font-size:13px}table{border-collapse:collapse}"
                "td,th{border:1px solid #ccc;padding:2px 6px}td.n{text-align:right}"
                "th{background:#eee}")  # fmt: skip


def render_html(report: dict[str, Any], *, title: str, scope: str) -> str:
    """The whole HTML document of the mail."""
    total = [("all", report["total"])]
    queues = [(r["queue"], r) for r in report["queues"]]
    teams = [(r["team"], r) for r in report.get("teams") or []]
    by_hour = [(f"{at:%Y-%m-%d %H}:00", r) for at, r in hours(report) if r]
    sl = f"SL = answered within {report['sl_threshold_s']} s"
    return "".join([
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n",
        f"<p>{html.escape(report['from'])} – {html.escape(report['to'])} · scope: "
        f"{html.escape(scope)} · {html.escape(sl)}</p>\n",
        _table("Total", "", total),
        _table("Per queue", "Queue", queues),
        _table("Per team", "Team", teams) if teams else "",
        "<h2>Hourly load and service level</h2>\n<p>Bars: calls offered per hour (left "
        "scale); red line: the hour's service level (right scale).</p>\n",
        chart_svg(report), "\n",
        _table("Per hour", "Hour", by_hour),
        "</body></html>\n",
    ])  # fmt: skip


def render_text(report: dict[str, Any], *, title: str, scope: str) -> str:
    """The plain-text part: the totals and the queues, one line each."""
    def line(key: str, r: dict[str, Any]) -> str:
        return f"{key:<16} " + "  ".join(f"{t} {cell(r.get(k), kind)}" for k, t, kind in COLUMNS)

    lines = [title, f"{report['from']} – {report['to']} · scope: {scope}", "",
             line("all", report["total"]),
             *(line(r["queue"], r) for r in report["queues"])]  # fmt: skip
    return "\n".join(lines) + "\n"

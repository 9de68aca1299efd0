"""The demo's HTML report: the per-queue table and two inline-SVG charts (calls offered per
hour of the day, service level per hour). One self-contained file, no script. Pure."""

from __future__ import annotations

import html
from collections.abc import Sequence

from ccrouter.demo.report import HourLine, RunReport, cells, header
from ccrouter.reports.model import kpi

_W, _H, _PAD = 640, 220, 36
_STYLE = """body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{padding:.25em .7em;border-bottom:1px solid #ddd}
td{text-align:right}td:first-child{text-align:left}tr.total td{font-weight:bold}
svg{background:#fafafa;border:1px solid #ddd;margin:.5em 0 1.5em}
.bar{fill:#4a7bd0}.sl{fill:#3a9a5b}.target{stroke:#c33;stroke-dasharray:4 3}
text{font:11px system-ui,sans-serif;fill:#444}"""


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float | None], top: float,
              css: str, fmt: str = "{:.0f}", target: float | None = None) -> str:
    """Vertical bars, one per label, scaled to `top`; None draws no bar ("no data")."""
    n = max(1, len(labels))
    slot = (_W - 2 * _PAD) / n
    inner = _H - 2 * _PAD
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
             f'role="img" aria-label="{html.escape(title)}">',
             f'<text x="{_PAD}" y="18">{html.escape(title)}</text>']  # fmt: skip
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = _PAD + i * slot
        if value is not None:
            h = inner * (value / top if top > 0 else 0)
            y = _PAD + inner - h
            parts.append(f'<rect class="{css}" data-label="{label}" data-value="{value}" '
                         f'x="{x + 3:.1f}" y="{y:.1f}" width="{slot - 6:.1f}" '
                         f'height="{h:.1f}"/>')  # fmt: skip
            parts.append(f'<text x="{x + slot / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle">'
                         f"{fmt.format(value)}</text>")
        parts.append(f'<text x="{x + slot / 2:.1f}" y="{_H - _PAD + 14}" '
                     f'text-anchor="middle">{html.escape(label)}</text>')  # fmt: skip
    if target is not None and top > 0:
        y = _PAD + inner * (1 - target / top)
        parts.append(f'<line class="target" x1="{_PAD}" x2="{_W - _PAD}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"/>')  # fmt: skip
    parts.append("</svg>")
    return "\n".join(parts)


def report_html(report: RunReport, *, title: str, target_sl: float, facts: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header(report))
    rows = []
    for line, css in [*((q, "") for q in report.queues), (report.total, "total")]:
        tds = "".join(f"<td>{html.escape(v)}</td>" for v in cells(line))
        rows.append(f'<tr class="{css}" data-queue="{html.escape(line.queue)}" '
                    f'data-offered="{line.counts.offered}" data-answered="{line.counts.answered}"'
                    f' data-abandoned="{line.counts.abandoned}">{tds}</tr>')  # fmt: skip
    charts = ""
    if report.hours:
        labels = [f"{h.hour:02d}" for h in report.hours]
        load = [float(h.counts.offered) for h in report.hours]
        sl = [_sl_pct(h) for h in report.hours]
        charts = (
            "<h2>Calls offered per hour</h2>"
            + bar_chart("calls offered per hour", labels, load, max(load, default=0) or 1, "bar")
            + f"<h2>Service level per hour (answered within {report.sl_threshold_s} s)</h2>"
            + bar_chart("service level per hour, %", labels, sl, 100.0, "sl", "{:.0f}%",
                        target=100 * target_sl)
        )
    items = "".join(f"<li>{html.escape(f)}</li>" for f in facts)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<ul>{items}</ul>
<h2>Per queue</h2>
<table><thead><tr>{head}</tr></thead><tbody>
{chr(10).join(rows)}
</tbody></table>
{charts}
</body></html>
"""


def _sl_pct(h: HourLine) -> float | None:
    sl = kpi(h.counts).sl
    return None if sl is None else 100 * sl

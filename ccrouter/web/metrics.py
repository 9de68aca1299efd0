"""`/metrics` in the Prometheus text format, read from the app's own counters at scrape time.

prometheus-client renders the format (escaping, HELP/TYPE, histogram series) and its parser is
what the tests use; the values come from one custom collector, in a registry owned by the web
feature (not the library's global default registry).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ccrouter.web.live import Histogram

if TYPE_CHECKING:
    from ccrouter.runtime import Gauge
    from ccrouter.web.context import WebContext

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _hist(name: str, doc: str, h: Histogram) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, doc, buckets=h.buckets(), sum_value=h.total)


def _per_queue(name: str, doc: str, values: dict[str, int], kind: type[Any]) -> Metric:
    m = kind(name, doc, labels=["queue"])
    for q, v in sorted(values.items()):
        m.add_metric([q], v)
    return m  # type: ignore[no-any-return]


class AppCollector(Collector):
    def __init__(self, ctx: WebContext, agi_latency: Histogram,
                 gauges: Sequence[Gauge] = ()) -> None:  # fmt: skip
        """`gauges`: the figures features publish (`daemon.gauges`), read at each scrape."""
        self._ctx, self._agi_latency, self._gauges = ctx, agi_latency, gauges

    def collect(self) -> Iterator[Metric]:
        app, live = self._ctx.app, self._ctx.live
        c = live.counters
        yield _per_queue("ccrouter_queue_calls", "Calls that joined a queue", c.joined,
                         CounterMetricFamily)
        yield _per_queue("ccrouter_queue_answered", "Queue calls answered", c.answered,
                         CounterMetricFamily)
        yield _per_queue("ccrouter_queue_abandoned", "Queue calls abandoned (not short)",
                         c.abandoned, CounterMetricFamily)
        yield _per_queue("ccrouter_queue_short_abandoned", "Queue calls abandoned before "
                         "calls.short_abandon_s", c.short_abandoned, CounterMetricFamily)
        waiting = {v.queue: v.waiting for v in live.queues(0.0)}
        yield _per_queue("ccrouter_queue_waiting", "Callers waiting now", waiting,
                         GaugeMetricFamily)
        yield _hist("ccrouter_queue_wait_seconds", "Wait of answered calls (HoldTime)", c.wait)
        yield GaugeMetricFamily("ccrouter_live_calls", "Calls in progress",
                                value=len(app.tracker.book))
        agi = app.agi.stats
        for key in ("connections", "sessions", "ok", "hangups", "errors", "rejected"):
            yield CounterMetricFamily(f"ccrouter_agi_{key}", f"FastAGI {key}",
                                      value=getattr(agi, key))
        yield GaugeMetricFamily("ccrouter_agi_active", "FastAGI sessions running",
                                value=agi.active)
        yield _hist("ccrouter_agi_script_seconds", "AGI script run time", self._agi_latency)
        w = app.writer.stats
        yield CounterMetricFamily("ccrouter_card_writes", "Card writes submitted",
                                  value=w.submitted)
        yield CounterMetricFamily("ccrouter_card_rows_written", "Card rows written",
                                  value=w.rows_written)
        yield CounterMetricFamily("ccrouter_card_write_failures", "Failed card transactions",
                                  value=w.failures)
        yield GaugeMetricFamily("ccrouter_card_queue_depth", "Card writes not yet committed",
                                value=w.queue_depth)
        yield CounterMetricFamily("ccrouter_ami_events", "AMI events received",
                                  value=app.tracker.events_seen)
        yield CounterMetricFamily("ccrouter_ami_bad_events", "AMI events that did not parse",
                                  value=app.tracker.bad_events)
        yield CounterMetricFamily("ccrouter_ami_connects", "AMI (re)connects",
                                  value=app.ami.connects)
        yield GaugeMetricFamily("ccrouter_ami_connected", "1 when AMI is connected",
                                value=int(app.ami.connected))
        for gauge in self._gauges:
            yield GaugeMetricFamily(gauge.metric, gauge.help, value=gauge.read())
        alerts = self._ctx.alerts
        if alerts is not None:
            yield GaugeMetricFamily("ccrouter_alerts_active", "Alerts firing now",
                                    value=len(alerts.active()))


def registry(collector: Collector) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(collector)
    return reg


def render(reg: CollectorRegistry) -> bytes:
    return generate_latest(reg)

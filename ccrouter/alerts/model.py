"""Alert rules: observations in, alerts firing out; the book that de-duplicates them. Pure.

An alert is keyed by rule name (system rules) or `rule:queue` (queue rules). The book turns
the set firing now into notices: `fired` when a key starts firing, `resolved` when it stops;
an alert that keeps firing is not repeated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ccrouter.config import AlertRule
from ccrouter.reports.model import Counts, kpi


@dataclass(frozen=True, slots=True)
class Observation:
    at: float
    local_minute: int
    """Minutes since local midnight (reports.timezone)."""
    queues: Sequence[str]
    sl_counts: Mapping[str, Mapping[str, Counts]]
    """Rule name -> queue -> counts over that rule's window."""
    longest_wait: Mapping[str, float]
    logged_in: Mapping[str, int]
    ami_down_s: float | None
    """Seconds since AMI was lost; None while connected."""
    readings: Mapping[str, Reading]
    """Figures other features publish, by the alert kind that watches them (absent: the
    feature is not installed)."""


@dataclass(frozen=True, slots=True)
class Reading:
    """A system-wide figure (e.g. requests waiting) and what it counts, for the message."""

    value: int
    what: str


@dataclass(frozen=True, slots=True)
class Alert:
    key: str
    rule: str
    kind: str
    queue: str | None
    message: str
    value: float | None
    fired_at: float


@dataclass(frozen=True, slots=True)
class Notice:
    state: str  # "fired" | "resolved"
    alert: Alert
    at: float


def in_hours(hours: str, minute: int) -> bool:
    """`hours` "HH:MM-HH:MM"; an end before the start spans midnight; equal = all day."""
    a, b = hours.split("-")
    start, end = int(a[:2]) * 60 + int(a[3:]), int(b[:2]) * 60 + int(b[3:])
    if start == end:
        return True
    return start <= minute < end if start < end else (minute >= start or minute < end)


def _firing(rule: AlertRule, obs: Observation) -> Iterable[tuple[str | None, str, float | None]]:
    queues = [rule.queue] if rule.queue else list(obs.queues)
    if rule.kind == "sl_below":
        for q in queues:
            c = obs.sl_counts.get(rule.name, {}).get(q)
            if c is None or c.offered - c.short_abandons < rule.min_offered:
                continue
            sl = kpi(c).sl
            if sl is not None and sl < rule.threshold:
                yield q, (f"{q}: service level {sl:.0%} below {rule.threshold:.0%} over the "
                          f"last {rule.window_min} min"), sl
    elif rule.kind == "longest_wait_above":
        for q in queues:
            wait = obs.longest_wait.get(q, 0.0)
            if wait > rule.threshold:
                yield q, f"{q}: a caller has waited {wait:.0f} s (limit {rule.threshold:g} s)", wait
    elif rule.kind == "no_operator":
        if rule.hours is None or not in_hours(rule.hours, obs.local_minute):
            return
        for q in queues:
            if obs.logged_in.get(q, 0) == 0:
                yield q, f"{q}: no operator logged in during its hours {rule.hours}", 0.0
    elif rule.kind == "ami_down":
        if obs.ami_down_s is not None and obs.ami_down_s > rule.threshold:
            yield None, f"Asterisk unreachable for {obs.ami_down_s:.0f} s", obs.ami_down_s
    elif (reading := obs.readings.get(rule.kind)) is not None:  # a feature's figure
        n = reading.value
        if n > rule.threshold:
            yield None, f"{n} {reading.what} (limit {rule.threshold:g})", float(n)


def evaluate(rules: Sequence[AlertRule], obs: Observation,
             node: str | None = None) -> dict[str, Alert]:  # fmt: skip
    """Every alert firing for these observations, by key. `node`: with several Asterisk
    nodes, the observations are that node's, and its alerts say so (`n1/rule:queue`)."""
    out: dict[str, Alert] = {}
    for rule in rules:
        for queue, message, value in _firing(rule, obs):
            key = f"{rule.name}:{queue}" if queue else rule.name
            if node is not None:
                key, message = f"{node}/{key}", f"{message} (node {node})"
            out[key] = Alert(key, rule.name, rule.kind, queue, message, value, obs.at)
    return out


class AlertBook:
    def __init__(self, active: Iterable[Alert] = ()) -> None:
        self._active = {a.key: a for a in active}

    def active(self) -> list[Alert]:
        return sorted(self._active.values(), key=lambda a: (a.fired_at, a.key))

    def update(self, firing: Mapping[str, Alert], now: float,
               rules: Iterable[str] | None = None) -> list[Notice]:
        """Notices for what changed. `rules`: the rule names evaluated this round (alerts of
        other rules are left alone); None = all."""
        scope = None if rules is None else set(rules)
        notices: list[Notice] = []
        for key, alert in list(self._active.items()):
            if key not in firing and (scope is None or alert.rule in scope):
                del self._active[key]
                notices.append(Notice("resolved", alert, now))
        for key, alert in firing.items():
            if key not in self._active:
                self._active[key] = alert
                notices.append(Notice("fired", alert, now))
        return notices

"""The live model behind the wallboard: queue members, waiting callers, counters. Pure.

Fed by the tracker's domain events (member events, queue joins/leaves, agent events) and reset
from a QueueStatus snapshot after every AMI (re)connect. Member state is Asterisk's: device state
numbers (1 not in use, 2 in use, 3 busy, 4 invalid, 5 unavailable, 6 ringing, 7 ring+in use,
8 on hold), the paused flag, in-call.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ccrouter.pbx import events as ev

BUSY_STATES: Final = frozenset({2, 3, 6, 7, 8})
RINGING_STATES: Final = frozenset({6, 7})
UNAVAILABLE_STATES: Final = frozenset({0, 4, 5})
WAIT_BUCKETS: Final = (5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(slots=True)
class Histogram:
    """Cumulative-bucket histogram (Prometheus semantics: a value counts in every le >= it)."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.bounds)

    def observe(self, value: float) -> None:
        self.n += 1
        self.total += value
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1

    def buckets(self) -> list[tuple[str, int]]:
        return [*((repr(b), c) for b, c in zip(self.bounds, self.counts, strict=True)),
                ("+Inf", self.n)]


@dataclass(frozen=True, slots=True)
class QueueView:
    queue: str
    waiting: int
    longest_wait_s: float
    logged_in: int
    free: int
    busy: int
    paused: int
    unavailable: int


@dataclass(frozen=True, slots=True)
class OperatorView:
    id: str
    name: str
    interface: str
    state: str  # free | busy | ringing | paused | unavailable | logged_out
    queues: tuple[str, ...]
    paused_reason: str


def member_state(m: ev.MemberState) -> str:
    if m.status in RINGING_STATES:
        return "ringing"
    if m.in_call or m.status in BUSY_STATES:
        return "busy"
    if m.paused:
        return "paused"
    if m.status in UNAVAILABLE_STATES:
        return "unavailable"
    return "free"


@dataclass(slots=True)
class Counters:
    joined: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    answered: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    abandoned: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    short_abandoned: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    wait: Histogram = field(default_factory=lambda: Histogram(WAIT_BUCKETS))


class LiveModel:
    def __init__(self, queues: Sequence[str], short_abandon_s: int) -> None:
        self._queues = list(dict.fromkeys(queues))
        self._short = short_abandon_s
        self._members: dict[tuple[str, str], ev.MemberState] = {}
        self._by_iface: dict[str, dict[str, ev.MemberState]] = defaultdict(dict)
        self._dirty: set[str] | None = None
        """Interfaces whose operator view changed since `take_dirty()` (None: all of them)."""
        self._waiting: dict[str, dict[str, float]] = defaultdict(dict)
        self.counters = Counters()
        self.version = 0
        """Bumped on every change (the wallboard pushes a snapshot when it moves)."""

    # --- inputs -----------------------------------------------------------------------------

    def apply(self, e: ev.DomainEvent) -> None:
        if isinstance(e, ev.MemberAdded | ev.MemberChanged):
            m = e.member
            self._members[(m.queue, m.interface)] = m
            self._by_iface[m.interface][m.queue] = m
            self._touch(m.interface)
        elif isinstance(e, ev.MemberRemoved):
            m = e.member
            self._members.pop((m.queue, m.interface), None)
            mine = self._by_iface.get(m.interface)
            if mine is not None:
                mine.pop(m.queue, None)
                if not mine:
                    del self._by_iface[m.interface]
            self._touch(m.interface)
        elif isinstance(e, ev.CallerJoined):
            self._see(e.queue)
            self._waiting[e.queue][e.chan.uniqueid] = e.at
            self.counters.joined[e.queue] += 1
        elif isinstance(e, ev.CallerLeft):
            self._waiting[e.queue].pop(e.chan.uniqueid, None)
        elif isinstance(e, ev.AgentAnswered):
            self._waiting[e.queue].pop(e.chan.uniqueid, None)
            self.counters.answered[e.queue] += 1
            self.counters.wait.observe(float(e.hold_time))
        elif isinstance(e, ev.CallerAbandoned):
            self._waiting[e.queue].pop(e.chan.uniqueid, None)
            short = e.hold_time < self._short
            (self.counters.short_abandoned if short else self.counters.abandoned)[e.queue] += 1
        elif isinstance(e, ev.PbxShutdown):
            self._waiting.clear()
        else:
            return
        self.version += 1

    def load_status(
        self,
        members: Iterable[ev.MemberState],
        waiting: Iterable[tuple[str, str, float]],
        queues: Iterable[str] = (),
    ) -> None:
        """Replace members and waiting callers with a QueueStatus snapshot
        (`waiting` = (queue, uniqueid, joined_at))."""
        self._members = {(m.queue, m.interface): m for m in members}
        self._by_iface = defaultdict(dict)
        for m in self._members.values():
            self._by_iface[m.interface][m.queue] = m
        self._dirty = None
        self._waiting = defaultdict(dict)
        for q in queues:
            self._see(q)
        for queue, uniqueid, joined_at in waiting:
            self._see(queue)
            self._waiting[queue][uniqueid] = joined_at
        self.version += 1

    def _touch(self, interface: str) -> None:
        if self._dirty is not None:
            self._dirty.add(interface)

    def take_dirty(self) -> set[str] | None:
        """The interfaces changed since the last call (None: everything may have changed)."""
        dirty, self._dirty = self._dirty, set()
        return dirty

    def interfaces(self) -> list[str]:
        """Every interface that is a member of some queue now."""
        return list(self._by_iface)

    def _see(self, queue: str) -> None:
        if queue not in self._queues:
            self._queues.append(queue)

    # --- views ------------------------------------------------------------------------------

    def waiting(self, queue: str) -> int:
        return len(self._waiting.get(queue, {}))

    def queues(self, now: float) -> list[QueueView]:
        states: dict[str, list[str]] = defaultdict(list)
        for (mq, _), m in self._members.items():  # one pass over the members for all queues
            states[mq].append(member_state(m))
        out = []
        for q in self._queues:
            qs = states.get(q, [])
            waits = self._waiting.get(q, {}).values()
            out.append(
                QueueView(
                    queue=q,
                    waiting=len(waits),
                    longest_wait_s=round(max((now - t for t in waits), default=0.0), 1),
                    logged_in=len(qs) - qs.count("unavailable"),
                    free=qs.count("free"),
                    busy=qs.count("busy") + qs.count("ringing"),
                    paused=qs.count("paused"),
                    unavailable=qs.count("unavailable"),
                )
            )
        return out

    def operators(self, configured: Mapping[str, tuple[str, str]]) -> list[OperatorView]:
        """`configured`: interface -> (operator id, name). Unknown members are listed by
        interface."""
        order = [*configured, *(i for i in self._by_iface if i not in configured)]
        return [self.operator(iface, configured) for iface in order]

    def operator(self, iface: str, configured: Mapping[str, tuple[str, str]]) -> OperatorView:
        """One interface's view (see `operators`)."""
        ms = list(self._by_iface.get(iface, {}).values())
        op_id, name = configured.get(iface, (iface, ms[0].member_name if ms else iface))
        if not ms:
            state, reason = "logged_out", ""
        else:
            states = [member_state(m) for m in ms]
            state = next((s for s in ("ringing", "busy") if s in states), "")
            if not state:
                state = "paused" if all(m.paused for m in ms) else (
                    "free" if "free" in states else states[0])
            reason = next((m.paused_reason for m in ms if m.paused), "")
        return OperatorView(op_id, name, iface, state, tuple(sorted(m.queue for m in ms)),
                            reason)

    def snapshot_members(self) -> list[dict[str, Any]]:
        return [
            {"queue": m.queue, "interface": m.interface, "state": member_state(m),
             "penalty": m.penalty, "paused": m.paused}
            for m in self._members.values()
        ]

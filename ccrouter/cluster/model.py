"""The cluster's rules, pure: how long a lease lives, and what a node's daemon is told.

A node is served by the instance that holds its lease. The row lives `ttl_s` (0.6 x
`cluster.lease_s`) past its last renewal, renewed every `renew_s` (0.2 x); a standby asks every
`poll_s` (0.2 x), so a dead holder's node has a new one within 0.8 x `lease_s`. A holder that
could not renew for `demote_s` (0.5 x) stops serving the node by itself, before the row can
expire and another instance take it: two instances never serve one node.

Every instance listens on the FastAGI port of every node it may serve. A call that reaches an
instance not serving the node is held (`park`) when the holder comes earlier in the order the
node's Asterisk tries instances — it was tried and did not answer, so it is likely dead and this
instance may take the node — or when nobody holds it; it is sent on (`next`) when the holder
comes later, where Asterisk will reach it. A held call is served once this instance serves the
node, or sent on after `park_s`.

A standby also keeps an AMI connection to every node it may serve and buffers the call events
of the last `WatchPolicy.window_s` (a dead holder's last moments, the lease's move, the new
daemon starting: `ttl_s + poll_s + park_s` and a margin), at most `max_events` of them: the
instance that takes the node over is handed them (`WatchBuffer`), so a call that ended while
nobody served the node ends as it did (see `ccrouter.calls.model.gap`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from ccrouter.calls.model.gap import REPLAYED, Watched
from ccrouter.config import AsteriskSettings, Settings


@dataclass(frozen=True, slots=True)
class LeaseTiming:
    ttl_s: float
    renew_s: float
    poll_s: float
    demote_s: float
    park_s: float
    """How long a standby holds a call for a node it may be about to serve (the lease's move
    and the node's daemon starting) before it sends the call on."""

    @classmethod
    def of(cls, lease_s: float) -> LeaseTiming:
        return cls(ttl_s=0.6 * lease_s, renew_s=0.2 * lease_s, poll_s=0.2 * lease_s,
                   demote_s=0.5 * lease_s, park_s=max(2.0 * lease_s, 3.0))  # fmt: skip


WATCH_MARGIN_S: Final = 5.0
"""Added to a watch window: the new daemon's start-up (database, restored cards, AMI login)."""
WATCH_MAX_EVENTS: Final = 20_000
"""Events a standby buffers per node at most (about 40 s of 50 calls/s): a flood drops the
oldest instead of growing without end."""


@dataclass(frozen=True, slots=True)
class WatchPolicy:
    window_s: float
    """How long a buffered event is kept (by its receive time)."""
    max_events: int
    names: frozenset[str]
    """The AMI events kept: those of a call's life the call book applies."""

    @classmethod
    def of(cls, timing: LeaseTiming, max_events: int = WATCH_MAX_EVENTS) -> WatchPolicy:
        if max_events < 1:
            raise ValueError(f"a watch buffer holds at least one event, not {max_events}")
        window = timing.ttl_s + timing.poll_s + timing.park_s + WATCH_MARGIN_S
        return cls(window_s=window, max_events=max_events, names=frozenset(REPLAYED))


class WatchBuffer:
    """A standby's buffered AMI events of one node, oldest first: only `policy.names`, none
    older than `policy.window_s` before the newest arrival (or, once `pin`ned, before the pin:
    the node is being taken over, and the gap must not age out while the daemon starts), never
    more than `policy.max_events` (the oldest go first)."""

    def __init__(self, policy: WatchPolicy) -> None:
        self.policy = policy
        self._events: deque[Watched] = deque()
        self._pinned_at: float | None = None
        self.dropped = 0
        """Events dropped for the count bound (not for their age)."""

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[Watched]:
        """The buffered events, oldest first (kept: see `take`)."""
        return iter(list(self._events))

    def add(self, at: float, msg: Mapping[str, Any]) -> bool:
        """Keep `msg` (received at `at`) if it is of use; whether it was kept."""
        name = msg.get("Event", "")
        if not isinstance(name, str) or name not in self.policy.names:
            return False
        self._events.append((at, msg))
        self._trim(at)
        return True

    def pin(self, at: float) -> None:
        """From now on keep everything since `at - window_s` (bounded by count only)."""
        self._pinned_at = at
        self._trim(at)

    def unpin(self) -> None:
        self._pinned_at = None

    def take(self) -> list[Watched]:
        """Every buffered event, oldest first; the buffer is empty and unpinned after."""
        events, self._events = list(self._events), deque()
        self._pinned_at = None
        return events

    def _trim(self, now: float) -> None:
        events, policy = self._events, self.policy
        horizon = (now if self._pinned_at is None else self._pinned_at) - policy.window_s
        while events and events[0][0] < horizon:
            events.popleft()
        while len(events) > policy.max_events:
            events.popleft()
            self.dropped += 1


Verdict = Literal["park", "next"]


UNKNOWN: Final = ""
"""The holder when the database could not be asked: this instance cannot take the node."""


def standby_verdict(order: Sequence[str], me: str, holder: str | None) -> Verdict:
    """What this instance, not serving a node, does with a call for it: `order` is the order
    the node's Asterisk tries instances in, `holder` the live lease holder (None: nobody;
    UNKNOWN: the database is away, so this instance cannot serve the node soon)."""
    if holder == UNKNOWN:
        return "next"
    if holder is None or holder == me or holder not in order or me not in order:
        return "park"
    return "park" if order.index(holder) < order.index(me) else "next"


def my_nodes(settings: Settings) -> list[str]:
    """The nodes this instance may serve (`cluster.instances[].nodes`, else every node)."""
    names = settings.asterisk.names()
    given = settings.cluster.me().nodes
    return names if given is None else [n for n in names if n in given]


def node_settings(settings: Settings, node: str) -> Settings:
    """The settings of the daemon serving `node` on this instance: that node's AMI, the
    FastAGI and HTTP ports of this instance for it (its index in `asterisk.nodes` added to the
    instance's first ports), and only the operators of that node."""
    names = settings.asterisk.names()
    index = names.index(node)
    ami = next((n.ami for n in settings.asterisk.nodes if n.name == node), settings.ami)
    update: dict[str, object] = {
        "ami": ami,
        "asterisk": AsteriskSettings(node=node, nodes=settings.asterisk.nodes),
        "operators": [op for op in settings.operators if op.node in (None, node)],
    }
    if settings.cluster.enabled:
        me = settings.cluster.me()
        update["agi"] = settings.agi.model_copy(
            update={"host": me.host, "port": me.agi_port + index})
        update["http"] = settings.http.model_copy(
            update={"port": me.http_port + index if me.http_port else 0})
    return settings.model_copy(update=update)


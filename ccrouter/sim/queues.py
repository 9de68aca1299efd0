"""Queues as app_queue keeps them: config, members, waiting callers, stats, ring strategies."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from .model import Member

if TYPE_CHECKING:
    from .channel import Channel

_WALKED = frozenset({"rrmemory", "rrordered", "linear"})
"""Strategies whose choice is the first free member in some order (`SimQueue.next_member`)."""

_penalty = attrgetter("penalty")

STRATEGIES = ("ringall", "rrmemory", "rrordered", "leastrecent", "fewestcalls", "random", "linear")


@dataclass(frozen=True, slots=True)
class QueueConfig:
    name: str
    strategy: str = "rrmemory"
    timeout: int = 15
    retry: int = 1
    wrapuptime: int = 0
    joinempty: bool = True
    maxlen: int = 0
    weight: int = 0
    servicelevel: int = 0
    defaultrule: str = ""
    """queuerules.conf rule copied onto each caller at join (see rules.py)."""

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"queue {self.name!r}: unknown strategy {self.strategy!r}; "
                             f"expected one of {', '.join(STRATEGIES)}")
        if self.timeout <= 0:
            raise ValueError(f"queue {self.name!r}: timeout must be > 0, got {self.timeout}")


@dataclass(slots=True)
class Attempt:
    """One member being rung for one caller."""

    member: Member
    chans: list[Channel]  # [dialled channel, (Local ;2)]
    started: float
    timer: asyncio.TimerHandle | None = None


@dataclass(slots=True)
class Entry:
    """A caller waiting in a queue."""

    live: Any  # calls.LiveCall (kept loose to avoid an import cycle)
    chan: Channel
    prio: int
    min_penalty: int | None
    max_penalty: int | None
    joined: float  # loop time
    seq: int
    original_position: int = 0
    attempts: dict[str, Attempt] = field(default_factory=dict)
    retry_until: float = 0.0
    timers: list[asyncio.TimerHandle] = field(default_factory=list)
    done: asyncio.Future[tuple[str, Attempt | None]] | None = None
    rules: list[Any] = field(default_factory=list)
    """The rule's PenaltyChanges still to come (copied at join)."""

    def allows(self, penalty: int) -> bool:
        if self.max_penalty is not None and penalty > self.max_penalty:
            return False
        return not (self.min_penalty is not None and penalty < self.min_penalty)


class SimQueue:
    def __init__(self, config: QueueConfig) -> None:
        self.config = config
        self.members: dict[str, Member] = {}
        self.entries: list[Entry] = []
        self.rr_next = 0
        self.completed = 0
        self.abandoned = 0
        self.completed_in_sl = 0
        self.abandoned_in_sl = 0
        self.holdtime = 0
        self.talktime = 0

    @property
    def name(self) -> str:
        return self.config.name

    def reset_stats(self) -> None:
        self.entries.clear()
        self.rr_next = 0
        self.completed = self.abandoned = self.completed_in_sl = self.abandoned_in_sl = 0
        self.holdtime = self.talktime = 0

    def insert(self, entry: Entry) -> int:
        """Place by priority (higher first), then arrival; return the 1-based position."""
        pos = len(self.entries)
        for i, other in enumerate(self.entries):
            if entry.prio > other.prio:
                pos = i
                break
        self.entries.insert(pos, entry)
        return pos + 1

    def position(self, entry: Entry) -> int:
        return self.entries.index(entry) + 1

    def record_hold(self, hold: int) -> None:
        self.holdtime = ((self.holdtime << 2) - self.holdtime + hold) >> 2

    def record_complete(self, hold: int, talk: int) -> None:
        self.completed += 1
        if hold <= self.config.servicelevel:
            self.completed_in_sl += 1
        if self.completed == 1:
            self.talktime = talk
        else:
            self.talktime = ((self.talktime << 2) - self.talktime + talk) >> 2

    def record_abandon(self, hold: int) -> None:
        self.abandoned += 1
        if hold <= self.config.servicelevel:
            self.abandoned_in_sl += 1

    def service_levels(self) -> tuple[float, float]:
        sl = 100.0 * self.completed_in_sl / self.completed if self.completed else 0.0
        both = self.completed + self.abandoned
        sl2 = 100.0 * (self.completed_in_sl + self.abandoned_in_sl) / both if both else 0.0
        return sl, sl2

    def assign(self, waiting: list[Entry], is_free: Callable[[Member], bool],
               now_epoch: Callable[[], float], rng: random.Random,
               ) -> Iterator[tuple[Entry, Member]]:
        """The (caller, member) pairs to ring now, in order: for each of the `waiting` callers
        in turn, the members `pick` chooses from the free ones (`is_free`, asked again after
        each pair is rung: a member rung is no longer free; no other member changes), until
        no member is free. rrmemory, rrordered and linear walk the members (`next_member`)
        instead of listing the free ones first."""
        if self.config.strategy in _WALKED:
            for entry in waiting:
                m, any_free = self.next_member(entry, is_free)
                if m is None:
                    if not any_free:
                        return
                    continue
                yield entry, m
            return
        free = [m for m in self.members.values() if is_free(m)]
        for entry in waiting:
            if not free:
                return
            for m in self.pick(entry, free, now_epoch(), rng):
                free = [f for f in free if f is not m]
                yield entry, m

    def next_member(self, entry: Entry,
                    is_free: Callable[[Member], bool]) -> tuple[Member | None, bool]:
        """rrmemory / rrordered / linear: the member `pick` chooses among the free ones, found
        by walking the members in order from `rr_next` (linear: from the first) and stopping
        at the first free, allowed one of the lowest penalty any allowed member has; updates
        `rr_next` as `pick` does. Also says whether any member was free (False: the walk saw
        them all and none was)."""
        members = list(self.members.values())
        n = len(members)
        if not n:
            return None, False
        rr = self.config.strategy != "linear"
        start = self.rr_next % n if rr else 0
        floor = min(map(_penalty, members))
        lo, hi = entry.min_penalty, entry.max_penalty
        if lo is not None and lo > floor:
            floor = lo
        best: Member | None = None
        best_i = best_pen = 0
        any_free = False
        for i in range(start - n, start):  # members[i]: from start to the end, then the rest
            m = members[i]
            p = m.penalty
            if best is not None and p >= best_pen:
                continue  # the walk already found as good a member, earlier
            if not is_free(m):
                continue
            any_free = True
            if (hi is not None and p > hi) or (lo is not None and p < lo):
                continue
            best, best_i, best_pen = m, i, p
            if p <= floor:
                break  # no allowed member has a lower penalty
        if best is None:
            return None, any_free
        if rr:
            self.rr_next = (best_i + 1) % n  # best_i: -n..n-1
        return best, True

    def pick(self, entry: Entry, free: list[Member], now_epoch: float,
             rng: random.Random) -> list[Member]:
        """Members to ring now for `entry`, from the free ones, by strategy (best penalty first)."""
        strategy = self.config.strategy
        if strategy in _WALKED:
            ids = {id(m) for m in free}
            m, _ = self.next_member(entry, lambda m: id(m) in ids)
            return [] if m is None else [m]
        eligible = [m for m in free if entry.allows(m.penalty)]
        if not eligible:
            return []
        best = min(m.penalty for m in eligible)
        tier = [m for m in eligible if m.penalty == best]
        if strategy == "ringall":
            return tier
        if strategy == "leastrecent":
            return [min(tier, key=lambda m: 0 if not m.last_call
                        else 1_000_000 - (now_epoch - m.last_call))]
        if strategy == "fewestcalls":
            return [min(tier, key=lambda m: m.calls_taken)]
        return [rng.choice(tier)]  # random

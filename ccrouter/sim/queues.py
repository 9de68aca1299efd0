"""Queues as app_queue keeps them: config, members, waiting callers, stats, ring strategies."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .model import Member

if TYPE_CHECKING:
    from .channel import Channel

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

    def pick(self, entry: Entry, free: list[Member], now_epoch: float,
             rng: random.Random) -> list[Member]:
        """Members to ring now for `entry`, from the free ones, by strategy (best penalty first)."""
        eligible = [m for m in free if entry.allows(m.penalty)]
        if not eligible:
            return []
        best = min(m.penalty for m in eligible)
        tier = [m for m in eligible if m.penalty == best]
        strategy = self.config.strategy
        if strategy == "ringall":
            return tier
        if strategy in ("rrmemory", "rrordered"):
            pos = {iface: i for i, iface in enumerate(self.members)}
            n, start = len(pos), self.rr_next
            chosen = min(tier, key=lambda m: (pos[m.interface] - start) % n)
            self.rr_next = (pos[chosen.interface] + 1) % n
            return [chosen]
        if strategy == "leastrecent":
            return [min(tier, key=lambda m: 0 if not m.last_call
                        else 1_000_000 - (now_epoch - m.last_call))]
        if strategy == "fewestcalls":
            return [min(tier, key=lambda m: m.calls_taken)]
        if strategy == "random":
            return [rng.choice(tier)]
        return [tier[0]]  # linear

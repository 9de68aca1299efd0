"""What the call book holds and hands out: a live call's state, its read-only view, and what it
keeps of a routing decision. Pure values: the book (`book.py`, `closing.py`) does the logic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class Routed(Protocol):
    """What the call book keeps of a routing decision (`ccrouter.routing.model.decide`)."""

    @property
    def language(self) -> str: ...
    @property
    def product(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def queue(self) -> str: ...
    @property
    def priority(self) -> int: ...


@dataclass(slots=True)
class LiveCall:
    """Mutable state of one live call; never leaves the call book except as a `CallView`."""

    card: str
    uniqueid: str
    started_at: float
    linkedid: str = ""
    channel: str = ""
    caller_num: str = ""
    caller_name: str = ""
    queue: str = ""
    routed: bool = False
    route_failed: bool = False
    joined: bool = False
    queues: list[str] = field(default_factory=list)
    ringing: str = ""
    answered: bool = False
    operator: str = ""
    interface: str = ""
    abandoned: bool = False
    short_abandon: bool = False
    agent_done: bool = False
    hungup_at: float | None = None
    preset_outcome: str = ""  # an originated leg that never answered: busy, no_answer, ...
    joined_at: float | None = None  # first QueueCallerJoin: the caller's place in line
    transfer_of: str = ""  # a transfer card: the card before the transfer (`transfer.py`)
    transfer_kind: str = ""  # blind | attended; "" until the transfer event told which
    talk_from: float | None = None  # bridged outside a queue (attended): talk_s at hang-up


@dataclass(frozen=True, slots=True)
class CallView:
    """A read-only snapshot of a live call (for the HTTP API and the wallboard)."""

    card: str
    uniqueid: str
    linkedid: str
    caller_num: str
    queue: str
    started_at: float
    answered: bool
    operator: str
    ringing: str

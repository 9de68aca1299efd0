"""Callback policy: who gets a callback, merging, ordering, pacing, retries, hours. Pure.

Plain values in, decisions out. The service (`ccrouter.callbacks.service`) feeds it requests
from the database, free operators from AMI member events, and the live queue's waits from the
call book; it applies the decisions (claim in the database, then Originate).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Protocol

from ccrouter.schedule import Schedule


class Kind(StrEnum):
    CALLBACK = "callback"  # an abandoned caller, the in-queue offer, an out-of-hours choice
    OUTBOUND = "outbound"  # a scheduled call (appointment reminder)


class State(StrEnum):
    PENDING = "pending"  # waiting for its due time, an operator, opening hours
    DIALING = "dialing"  # claimed: an attempt is in flight
    DONE = "done"  # connected to an operator (or the outbound message was played)
    FAILED = "failed"  # every attempt failed
    CANCELLED = "cancelled"  # the caller got through on their own, or a person cancelled it
    EXPIRED = "expired"  # too old to be worth a call


OPEN_STATES: Final = (State.PENDING.value, State.DIALING.value)


class Refusal(StrEnum):
    """Why an abandoned call gets no request."""

    WITHHELD = "withheld"
    INVALID = "invalid_number"
    SHORT_ABANDON = "short_abandon"
    DO_NOT_CALL = "do_not_call"


class AttemptResult(StrEnum):
    ANSWERED = "answered"  # the customer picked up (customer-first: now in the queue)
    CONNECTED = "connected"  # an operator took the call
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    CONGESTION = "congestion"
    FAILED = "failed"
    ABANDONED = "abandoned"  # the customer answered, then hung up before an operator took it
    LOST = "lost"  # ccrouter restarted and the channel was gone: the outcome is unknown
    OPERATOR_MISSED = "operator_missed"
    """Operator first: the operator did not answer (or hung up before the customer was
    dialled). Not the customer's fault: the attempt does not count, another operator is tried."""
    PBX_RESTART = "pbx_restart"
    """Asterisk refused the Originate: it was shutting down or still booting after a restart.
    Not the customer's fault: the attempt does not count; the request waits until the PBX is
    fully booted again."""


# OriginateResponse `Reason` is the last control frame seen while dialling
# (include/asterisk/frame.h AST_CONTROL_*): 0 = no channel at all.
_REASONS: Final = {
    0: AttemptResult.FAILED,
    1: AttemptResult.FAILED,  # AST_CONTROL_HANGUP: rejected
    3: AttemptResult.NO_ANSWER,  # AST_CONTROL_RINGING when the timeout hit
    4: AttemptResult.ANSWERED,  # AST_CONTROL_ANSWER
    5: AttemptResult.BUSY,  # AST_CONTROL_BUSY
    8: AttemptResult.CONGESTION,  # AST_CONTROL_CONGESTION
}


def result_of_originate(success: bool, reason: int) -> AttemptResult:
    if success and reason == 4:
        return AttemptResult.ANSWERED
    result = _REASONS.get(reason, AttemptResult.FAILED)
    return AttemptResult.FAILED if result is AttemptResult.ANSWERED else result


_DIAL_STATUS: Final = {
    "ANSWER": AttemptResult.CONNECTED,
    "BUSY": AttemptResult.BUSY,
    "NOANSWER": AttemptResult.NO_ANSWER,
    "CONGESTION": AttemptResult.CONGESTION,
    "CHANUNAVAIL": AttemptResult.FAILED,
    "CANCEL": AttemptResult.OPERATOR_MISSED,  # the operator hung up while the customer rang
    "": AttemptResult.OPERATOR_MISSED,  # the operator hung up before Dial() ran
}


def result_of_dial(dial_status: str) -> AttemptResult:
    """Operator first: the customer leg's outcome from Dial()'s DIALSTATUS (app_dial.c)."""
    return _DIAL_STATUS.get(dial_status.strip().upper(), AttemptResult.FAILED)


@dataclass(frozen=True, slots=True)
class Policy:
    short_abandon_s: int = 5
    withheld: str = r"^(|anonymous|unknown|restricted|private|unavailable)$"
    valid: str = r"^\+?[0-9]{5,15}$"
    do_not_call: frozenset[str] = frozenset()
    max_attempts: int = 3
    backoff_s: tuple[float, ...] = (120.0, 600.0, 1800.0)
    expire_after_s: float = 86400.0
    max_live_wait_s: float = 60.0
    pace_s: float = 2.0
    fallback: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Target -> other targets whose operators may also serve its callbacks."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if not self.backoff_s:
            raise ValueError("backoff_s must not be empty")


def refusal(number: str, hold_time: int, policy: Policy) -> Refusal | None:
    """Why this abandoned call gets no callback, or None when it should get one."""
    n = number.strip()
    if re.match(policy.withheld, n, re.IGNORECASE):
        return Refusal.WITHHELD
    if not re.match(policy.valid, n):
        return Refusal.INVALID
    if n in policy.do_not_call or n.lstrip("+") in policy.do_not_call:
        return Refusal.DO_NOT_CALL
    if hold_time < policy.short_abandon_s:
        return Refusal.SHORT_ABANDON
    return None


@dataclass(frozen=True, slots=True)
class Request:
    """A callback request as stored (table `callback_requests`)."""

    id: int
    number: str
    kind: str
    state: str
    target: str
    place_at: float
    """The caller's original join time: requests are served in this order (fair to the queue)."""
    due_at: float
    created_at: float
    attempts: int = 0
    abandons: int = 1
    card: str | None = None
    language: str = ""
    product: str = ""
    message: str = ""
    reason: str | None = None
    """Why it ended (caller_got_through, attempts_used_up, connected, ...)."""


@dataclass(frozen=True, slots=True)
class Merge:
    """What an open request becomes when the same number abandons again."""

    place_at: float
    abandons: int


def merge(existing: Request, place_at: float) -> Merge:
    """Keep the earliest place, count the abandons."""
    return Merge(min(existing.place_at, place_at), existing.abandons + 1)


def order_key(r: Request) -> tuple[float, int]:
    return (r.place_at, r.id)


def ordered(requests: Iterable[Request]) -> list[Request]:
    return sorted(requests, key=order_key)


def next_due(attempts: int, now: float, policy: Policy) -> float | None:
    """After `attempts` failed attempts: when to try again, or None when they are used up."""
    if attempts >= policy.max_attempts:
        return None
    step = policy.backoff_s[min(attempts - 1, len(policy.backoff_s) - 1)] if attempts else 0.0
    return now + step


def expired(r: Request, now: float, policy: Policy) -> bool:
    return r.kind == Kind.CALLBACK and now - r.created_at > policy.expire_after_s


class Hours(Protocol):
    """Business hours of a line (target); `ccrouter.schedule` provides the real one."""

    def is_open(self, target: str, at: float) -> bool: ...


class AlwaysOpen:
    def is_open(self, target: str, at: float) -> bool:
        return True


class LineHours:
    """Business hours per target from the product lines' schedules (a line not listed: 24/7)."""

    def __init__(self, schedules: Mapping[str, Schedule], product_of: Mapping[str, str]) -> None:
        self._schedules = dict(schedules)
        self._product_of = dict(product_of)

    def is_open(self, target: str, at: float) -> bool:
        schedule = self._schedules.get(self._product_of.get(target, ""))
        return schedule is None or schedule.is_open(at)


@dataclass(frozen=True, slots=True)
class Line:
    """What the dispatcher knows about one target right now."""

    queue: str
    free: frozenset[str]
    """Interfaces of members of its queue that are not paused and not in use."""
    oldest_wait_s: float = 0.0
    """How long the longest-waiting live caller of this queue has waited (0: nobody)."""
    last_originate_at: float | None = None


@dataclass(frozen=True, slots=True)
class Dispatch:
    request: Request
    target: str
    """The target whose queue the callback leg joins (the request's own or a fallback)."""
    interface: str
    """The free operator this callback is counted against."""


@dataclass(frozen=True, slots=True)
class Plan:
    dispatch: tuple[Dispatch, ...]
    wake_at: float | None
    """When to look again even if nothing happens (a due time, pacing, expiry); None: never."""


def plan(
    pending: Sequence[Request],
    lines: Mapping[str, Line],
    in_flight: Mapping[str, int],
    now: float,
    policy: Policy,
    hours: Hours,
) -> Plan:
    """Which requests to dial now and against which free operator.

    One callback per free operator: every leg in flight (per target) holds one free member of
    its queue; a request is dialled only while an unheld free member of its own target (or a
    fallback target) remains, the line is open, its live callers have not waited beyond
    `max_live_wait_s`, and the line's pacing allows it (one Originate per `pace_s`).
    """
    held: set[str] = set()
    for target, count in in_flight.items():
        line = lines.get(target)
        if line is None:
            continue
        for iface in sorted(line.free - held)[:count]:
            held.add(iface)
    paced: dict[str, float] = {
        t: line.last_originate_at for t, line in lines.items() if line.last_originate_at is not None
    }
    out: list[Dispatch] = []
    wake: list[float] = []
    for r in ordered(pending):
        if r.due_at > now:
            wake.append(r.due_at)
            continue
        for target in (r.target, *policy.fallback.get(r.target, ())):
            line = lines.get(target)
            if line is None or not hours.is_open(target, now):
                continue
            if line.oldest_wait_s > policy.max_live_wait_s:
                continue
            free = sorted(line.free - held)
            if not free:
                continue
            last = paced.get(target)
            if last is not None and now - last < policy.pace_s:
                wake.append(last + policy.pace_s)
                continue
            held.add(free[0])
            paced[target] = now
            out.append(Dispatch(r, target, free[0]))
            break
    return Plan(tuple(out), min(wake) if wake else None)

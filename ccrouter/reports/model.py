"""Call-centre numbers: SL, ASA, AAR, handled %, CSAT, and Erlang C staffing. Pure.

Definitions (shared/DESIGN.md, "Definitions for the numbers"):

- Offered = calls that entered a queue (card outcome answered, abandoned, short_abandon or
  overflow). A transferred call is one call: it counts on its first card only (the `transfer`
  card of its rest is in no number, `NOT_OFFERED_KINDS`). A short abandon (gave up before
  `calls.short_abandon_s`) is excluded from the denominators of SL and AAR.
- SL(T) = answered with wait <= T s / (offered - short abandons). A call answered after exactly
  T seconds is within the service level.
- ASA = mean wait of answered calls. AAR = abandoned (not short) / (offered - short abandons).
- Handled % = answered / offered. CSAT = share of ratings 4-5 among rated calls; also the mean.
- After-call work: an answered call whose call has ended needs its card completed (topic and
  resolution saved, `completed_at`). Card completion = cards completed within
  `reports.card_deadline_s` of the call's end / answered calls that ended. After-call time
  (ACW) = mean of completed_at - ended_at over completed cards (0 for a card completed during
  the call).

The SQL in `ccrouter.reports.store` produces `Counts`; `kpi()` turns them into ratios. A ratio
whose denominator is zero is None ("no data"), never 0 or 1.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

QUEUE_OUTCOMES: Final = ("answered", "abandoned", "short_abandon", "overflow")
"""Card outcomes of calls that entered a queue (= offered)."""
NOT_OFFERED_KINDS: Final = ("transfer",)
"""Card kinds that are the rest of a call already offered (counted on its first card)."""


@dataclass(frozen=True, slots=True)
class Counts:
    offered: int = 0
    answered: int = 0
    answered_in_sl: int = 0
    abandoned: int = 0
    short_abandons: int = 0
    wait_answered_s: float = 0.0
    """Sum of the waits of answered calls."""
    talk_s: float = 0.0
    """Sum of the talk times of answered calls that have one."""
    talked: int = 0
    rated: int = 0
    satisfied: int = 0
    """Ratings of 4 or 5."""
    rating_sum: float = 0.0
    to_complete: int = 0
    """Answered calls that have ended: each needs its card completed."""
    completed: int = 0
    completed_in_deadline: int = 0
    after_call_s: float = 0.0
    """Sum of the after-call times of completed cards."""


def add(a: Counts, b: Counts) -> Counts:
    """The counts of both sets of calls (a team's: its operators' summed)."""
    return Counts(*(getattr(a, f.name) + getattr(b, f.name) for f in dataclasses.fields(Counts)))


@dataclass(frozen=True, slots=True)
class Kpi:
    offered: int
    answered: int
    abandoned: int
    short_abandons: int
    sl: float | None
    asa_s: float | None
    aar: float | None
    handled: float | None
    aht_s: float | None
    """Mean talk time of answered calls (the handle time staffing uses)."""
    csat: float | None
    csat_mean: float | None
    rated: int
    card_completion: float | None
    """Share of ended answered calls whose card was completed within the deadline."""
    acw_s: float | None
    """Mean after-call time (call end -> card completed)."""
    cards_completed: int


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def kpi(c: Counts) -> Kpi:
    base = c.offered - c.short_abandons
    return Kpi(
        offered=c.offered,
        answered=c.answered,
        abandoned=c.abandoned,
        short_abandons=c.short_abandons,
        sl=_ratio(c.answered_in_sl, base),
        asa_s=_ratio(c.wait_answered_s, c.answered),
        aar=_ratio(c.abandoned, base),
        handled=_ratio(c.answered, c.offered),
        aht_s=_ratio(c.talk_s, c.talked),
        csat=_ratio(c.satisfied, c.rated),
        csat_mean=_ratio(c.rating_sum, c.rated),
        rated=c.rated,
        card_completion=_ratio(c.completed_in_deadline, c.to_complete),
        acw_s=_ratio(c.after_call_s, c.completed),
        cards_completed=c.completed,
    )


@dataclass(frozen=True, slots=True)
class CallFacts:
    """The card fields the numbers use (a reference for tests and small in-memory sets)."""

    outcome: str | None
    wait_s: int | None = None
    talk_s: int | None = None
    csat: int | None = None
    ended_at: float | None = None
    completed_at: float | None = None
    kind: str = "inbound"


def count(calls: Iterable[CallFacts], sl_threshold_s: int, card_deadline_s: int = 120) -> Counts:
    """The same counts as the SQL report, in Python (for tests and reference). Ratings count
    on offered calls only (the survey follows a queue call)."""
    offered = answered = in_sl = abandoned = short = talked = rated = satisfied = 0
    to_complete = completed = in_deadline = 0
    wait = talk = rating_sum = after_call = 0.0
    for c in calls:
        if c.outcome not in QUEUE_OUTCOMES or c.kind in NOT_OFFERED_KINDS:
            continue
        offered += 1
        if c.csat is not None:
            rated += 1
            rating_sum += c.csat
            satisfied += c.csat >= 4
        if c.outcome == "answered":
            answered += 1
            w = c.wait_s or 0
            wait += w
            in_sl += w <= sl_threshold_s
            if c.talk_s is not None:
                talked += 1
                talk += c.talk_s
            if c.ended_at is not None:
                to_complete += 1
                if c.completed_at is not None:
                    acw = max(0.0, c.completed_at - c.ended_at)
                    completed += 1
                    after_call += acw
                    in_deadline += acw <= card_deadline_s
        elif c.outcome == "abandoned":
            abandoned += 1
        elif c.outcome == "short_abandon":
            short += 1
    return Counts(offered, answered, in_sl, abandoned, short, wait, talk, talked, rated,
                  satisfied, rating_sum, to_complete, completed, in_deadline, after_call)


# --- Erlang C -------------------------------------------------------------------------------


def erlang_c(agents: int, traffic: float) -> float:
    """Probability that a call waits (Erlang C), for `traffic` erlangs offered to `agents`.

    Computed through the Erlang B recursion (no factorials, stable for hundreds of agents).
    1.0 when the agents cannot carry the traffic (agents <= traffic).
    """
    if traffic < 0 or agents < 0:
        raise ValueError(f"need agents >= 0 and traffic >= 0, got {agents}, {traffic}")
    if traffic == 0:
        return 0.0
    if agents <= traffic:
        return 1.0
    b = 1.0
    for n in range(1, agents + 1):
        b = traffic * b / (n + traffic * b)
    return agents * b / (agents - traffic * (1 - b))


def service_level(agents: int, traffic: float, aht_s: float, t_s: float) -> float:
    """Share of calls answered within `t_s` seconds with `agents` (Erlang C, M/M/N)."""
    if aht_s <= 0:
        raise ValueError(f"handle time must be > 0, got {aht_s}")
    if agents <= traffic:
        return 0.0 if traffic > 0 else 1.0
    p_wait = erlang_c(agents, traffic)
    return max(0.0, 1.0 - p_wait * math.exp(-(agents - traffic) * t_s / aht_s))


@dataclass(frozen=True, slots=True)
class Staffing:
    agents: int
    traffic_erlangs: float
    service_level: float
    """The SL these agents give (>= the target)."""
    asa_s: float
    """Expected mean wait with these agents."""


MAX_AGENTS: Final = 10_000


def agents_needed(
    calls: float, period_s: float, aht_s: float, target_sl: float, t_s: float
) -> Staffing:
    """The fewest agents that answer `target_sl` of `calls` (arriving over `period_s`, each
    handled in `aht_s`) within `t_s` seconds."""
    if period_s <= 0 or calls < 0 or not 0 < target_sl < 1:
        raise ValueError(f"bad staffing input: calls={calls} period_s={period_s} "
                         f"target_sl={target_sl}")
    if calls == 0 or aht_s <= 0:
        return Staffing(0, 0.0, 1.0, 0.0)
    traffic = calls * aht_s / period_s
    n = max(1, math.floor(traffic) + 1)
    while n < MAX_AGENTS:
        sl = service_level(n, traffic, aht_s, t_s)
        if sl >= target_sl:
            break
        n += 1
    sl = service_level(n, traffic, aht_s, t_s)
    asa = erlang_c(n, traffic) * aht_s / (n - traffic)
    return Staffing(n, traffic, sl, asa)


def kpi_dict(c: Counts) -> dict[str, Any]:
    """The KPIs of these counts as JSON-ready values (floats rounded to 4 places)."""
    out = dataclasses.asdict(kpi(c))
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}

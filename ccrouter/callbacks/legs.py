"""The callback service's values: jobs for its task, attempts in flight, the policy from the
settings, and the customer-first Originate (operator first: `ccrouter.callbacks.operator_first`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from ccrouter import dialplan as dp
from ccrouter.callbacks import model as cb
from ccrouter.callbacks.config import CallbackSettings, callback_settings
from ccrouter.callbacks.store import Attempt
from ccrouter.calls.model.cards import CardWrite
from ccrouter.config import Settings, Target
from ccrouter.pbx import events as ev
from ccrouter.pbx.ami.translate import BadEvent, member_from_status_item

log = structlog.get_logger(__name__)

CAUGHT_UP = "caller_got_through"
STALE_MARGIN_S = 30.0
"""A leg not answered this long after its ring timeout has lost its OriginateResponse."""


class CardSink(Protocol):
    def submit(self, write: CardWrite) -> None: ...


def policy(settings: Settings) -> cb.Policy:
    c = callback_settings(settings)
    return cb.Policy(
        short_abandon_s=settings.calls.short_abandon_s, withheld=c.withheld_pattern,
        valid=c.valid_pattern, do_not_call=frozenset(c.do_not_call),
        max_attempts=c.max_attempts, backoff_s=tuple(c.retry_backoff_s),
        expire_after_s=c.expire_after_s, max_live_wait_s=c.max_live_wait_s, pace_s=c.pace_s,
        fallback={k: tuple(v) for k, v in c.fallback.items()},
    )  # fmt: skip


@dataclass(slots=True)
class Flight:
    """An attempt in flight: dialling the customer, or the customer waiting for the operator
    (operator first: ringing the operator, or the operator dialling the customer)."""

    attempt: Attempt
    request: cb.Request
    answered: bool = False
    interface: str = ""
    """Operator first: the operator rung."""


@dataclass(frozen=True, slots=True)
class Abandon:
    number: str
    target: str
    card: str | None
    place_at: float
    hold_time: int


@dataclass(frozen=True, slots=True)
class Job:
    kind: str  # "answered" | "connected" | "originated" | "hungup" | "dialled" | "wake"
    key: str = ""  # caller number / ActionID / Uniqueid
    result: cb.AttemptResult | None = None
    detail: str = ""  # "dialled": ANSWEREDTIME


def customer_first(
    s: CallbackSettings, r: cb.Request, t: Target, *, action_id: str, channel_id: str,
    card: str,
) -> dict[str, Any]:  # fmt: skip
    """The AMI Originate that dials the customer into `ccrouter-callback` (then the queue)."""
    variables = {
        dp.VAR_QUEUE: t.queue_name, dp.VAR_QUEUE_TIMEOUT: str(t.timeout_s),
        dp.VAR_QUEUE_PRIO: str(s.queue_priority), dp.VAR_CARD: card,
        dp.VAR_CALLBACK_OF: r.card or "", dp.VAR_LANGUAGE: r.language,
        dp.VAR_PRODUCT: r.product, dp.VAR_PROMPT: r.message or s.prompt,
    }  # fmt: skip
    action: dict[str, Any] = {
        "Action": "Originate", "ActionID": action_id, "ChannelId": channel_id,
        "Channel": s.dial.replace("{number}", r.number),
        "Context": dp.CONTEXT_CALLBACK, "Exten": "s", "Priority": "1",
        "Timeout": str(s.ring_timeout_s * 1000), "Async": "true",
        "Variable": [f"{k}={v}" for k, v in variables.items()],
    }  # fmt: skip
    if s.caller_id:
        action["CallerID"] = s.caller_id
    return action


def leg_fields(s: CallbackSettings, r: cb.Request, t: Target) -> dict[str, Any]:
    """The card of a callback/outbound leg as it opens."""
    kind = cb.Kind.OUTBOUND if r.kind == cb.Kind.OUTBOUND else cb.Kind.CALLBACK
    return {"kind": kind.value, "callback_of": r.card, "target": t.name,
            "queue": t.queue_name, "language": r.language, "product": r.product,
            "dialled": r.number, "priority": str(s.queue_priority)}  # fmt: skip


def members_of(items: Iterable[Mapping[str, Any]], seen_before: float
               ) -> dict[tuple[str, str], ev.MemberState]:  # fmt: skip
    """Queue members from a QueueStatus reply (its QueueMember entries)."""
    members: dict[tuple[str, str], ev.MemberState] = {}
    for item in items:
        if item.get("Event") == "QueueMember":
            try:
                m = member_from_status_item(item, seen_before)
            except BadEvent as e:
                log.warning("ami_bad_event", error=str(e))
                continue
            members[(m.queue, m.interface)] = m
    return members

"""The AMI events of a gap in the book's view of a node (a lease moving between cluster
instances), seen by another connection: which of them the book can still use. Pure.

A cluster standby keeps an AMI connection to a node it does not serve and buffers its call
events; the instance that takes the node over restores the open cards, then — before its first
resync reconciles them with Asterisk's channels — is handed that buffer. `missed` cuts off the
part the new holder's own connection also received; `replayable` keeps, of the rest, what
changes a restored call the old holder had not already recorded (its committed card says so):
a caller who abandoned during the gap is closed abandoned (and the callbacks hear the abandon),
one answered gets the operator. Events of calls the book does not hold (closed by the old
holder, or never carded) are never replayed: they would open a second card.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from ccrouter.calls.model.live import LiveCall
from ccrouter.calls.model.transfer import TRANSFER_REASON
from ccrouter.pbx import events as ev

Watched = tuple[float, Mapping[str, Any]]
"""An AMI event message and when it was received (epoch seconds)."""

REPLAYED: Final = (
    "QueueCallerJoin", "QueueCallerAbandon", "AgentCalled", "AgentRingNoAnswer",
    "AgentConnect", "AgentComplete", "Hangup",
)  # fmt: skip
"""The AMI events (apps/app_queue.c, main/manager_channels.c) of a queued call's life that the
book applies and a gap can hold; what they become is in `ccrouter.pbx.ami.translate`."""


def _name(msg: Mapping[str, Any]) -> str:
    name = msg.get("Event", "")
    return name[-1] if isinstance(name, list) else str(name)


def missed(watched: Sequence[Watched], live: Sequence[Watched]) -> list[Watched]:
    """The `watched` events (oldest first) that came before the first of the `REPLAYED`
    events of `live` (what the new holder's own connection received, oldest first, before it
    was handed the buffer). Both connections get Asterisk's one event stream, so the `live`
    ones appear in `watched` in the same order from some point on; where the streams cannot be
    lined up (the standby's connection dropped meanwhile), every watched event is returned —
    `replayable` leaves out those already applied."""
    kept = [w for w in watched if _name(w[1]) in REPLAYED]
    ours = [msg for _, msg in live if _name(msg) in REPLAYED]
    if not ours:
        return kept
    first = ours[0]
    for start in range(len(kept) - 1, -1, -1):  # the latest fit: replay no more than needed
        if kept[start][1] != first:
            continue
        tail = [msg for _, msg in kept[start : start + len(ours)]]
        if tail == ours[: len(tail)]:
            return kept[:start]
    return kept


def call_key(event: ev.DomainEvent) -> tuple[str, str] | None:
    """(uniqueid, linkedid) to find the call a replayable event is about, as the book's own
    handlers find it (by the caller's uniqueid; an AgentComplete without the caller's block by
    its linkedid); None for an event that is never replayed."""
    if isinstance(event, ev.ChannelHungUp):
        return event.uniqueid, ""
    if isinstance(event, ev.AgentFinished) and not event.chan.uniqueid:
        return "", event.chan.linkedid
    if isinstance(event, _ABOUT_A_CALLER):
        return event.chan.uniqueid, ""
    return None


_ABOUT_A_CALLER = (ev.CallerJoined, ev.CallerAbandoned, ev.AgentRinging, ev.AgentNoAnswer,
                   ev.AgentAnswered, ev.AgentFinished)  # fmt: skip


def replayable(event: ev.DomainEvent, call: LiveCall | None) -> bool:
    """Whether a gap event changes `call` (the live call `call_key` finds; None: the book holds
    none) in a way its restored card does not already show — so that replaying an event the
    old holder had applied and committed, or that this book applied already, does nothing."""
    if call is None:
        return False
    if isinstance(event, ev.CallerJoined):
        return call.hungup_at is None and not (call.joined and call.queue == event.queue)
    if isinstance(event, ev.AgentRinging | ev.AgentNoAnswer):
        return call.hungup_at is None and not call.answered and not call.abandoned
    if isinstance(event, ev.AgentAnswered):
        return not call.answered and not call.abandoned
    if isinstance(event, ev.AgentFinished):  # a transfer's opens a card: not from a replay
        return call.answered and not call.agent_done and event.reason != TRANSFER_REASON
    if isinstance(event, ev.CallerAbandoned):
        return not call.abandoned and not call.answered
    if isinstance(event, ev.ChannelHungUp):
        return call.hungup_at is None
    return False


__all__ = ["REPLAYED", "Watched", "call_key", "missed", "replayable"]

"""The AMI events of a gap in the book's view of a node (a lease moving between cluster
instances), seen by another connection: which of them the book can still use. Pure.

A cluster standby keeps an AMI connection to a node it does not serve and buffers its call
events; the instance that takes the node over restores the open cards, then — before its first
resync reconciles them with Asterisk's channels — is handed that buffer. `missed` cuts off the
part the new holder's own connection also received; `replayable` keeps, of the rest, what
changes a restored call the old holder had not already recorded (its committed card says so):
a caller who abandoned during the gap is closed abandoned (and the callbacks hear the abandon),
one answered gets the operator, one transferred (`BlindTransfer` / `AttendedTransfer` and
app_queue's `AgentComplete` `Reason: transfer`, in either order) ends `transfer` with exactly
one transfer card. The old holder may have applied part of a transfer: its transfer card,
restored, is the channel's call (the first card waiting for its AgentComplete when that is
still open: `CallBook.handed_over`) and says whether the transfer event was applied
(`transfer_kind`); a transfer card is transferred again only by its own operator, so the
transfer that opened it is never applied twice. Events of calls the book does not hold (closed
by the old holder, or never carded) are never replayed: they would open a second card.

`QueueCallerLeave` is not replayed: the book takes nothing from it (a caller's leaving shows in
the event that follows — AgentConnect, QueueCallerAbandon, the next queue's QueueCallerJoin, the
Hangup — all replayed), and the wallboard reloads its waiting callers from QueueStatus at the
resync. Nor are the recording's events (`VarSet` MIXMONITOR_FILENAME, `MixMonitorStart`,
`MixMonitorStop`): the book takes nothing from them, and the recordings feature keeps its own
state, which does not survive the move (README "Known limits").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from ccrouter.calls.model.live import LiveCall
from ccrouter.calls.model.transfer import TRANSFER_REASON
from ccrouter.pbx import events as ev
from ccrouter.pbx.ami.names import interface_of

Watched = tuple[float, Mapping[str, Any]]
"""An AMI event message and when it was received (epoch seconds)."""

REPLAYED: Final = (
    "QueueCallerJoin", "QueueCallerAbandon", "AgentCalled", "AgentRingNoAnswer",
    "AgentConnect", "AgentComplete", "Hangup", "BlindTransfer", "AttendedTransfer",
)  # fmt: skip
"""The AMI events (apps/app_queue.c, main/manager_channels.c, main/stasis_bridges.c) of a
queued call's life that the book applies and a gap can hold; what they become is in
`ccrouter.pbx.ami.translate`."""


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
    its linkedid; a transfer by its transferee); None for an event that is never replayed."""
    if isinstance(event, ev.ChannelHungUp):
        return event.uniqueid, ""
    if isinstance(event, ev.CallTransferred):
        return (event.transferee.uniqueid, "") if event.transferee is not None else None
    if isinstance(event, ev.AgentFinished) and not event.chan.uniqueid:
        return "", event.chan.linkedid
    if isinstance(event, _ABOUT_A_CALLER):
        return event.chan.uniqueid, ""
    return None


_ABOUT_A_CALLER = (ev.CallerJoined, ev.CallerAbandoned, ev.AgentRinging, ev.AgentNoAnswer,
                   ev.AgentAnswered, ev.AgentFinished)  # fmt: skip


def replayable(event: ev.DomainEvent, call: LiveCall | None,
               handed_over: LiveCall | None = None) -> bool:  # fmt: skip
    """Whether a gap event changes `call` (the live call `call_key` finds; None: the book holds
    none) in a way its restored card does not already show — so that replaying an event the
    old holder had applied and committed, or that this book applied already, does nothing.
    `handed_over`: the first part of a transfer on that channel, waiting for its AgentComplete
    (`CallBook.handed_over`)."""
    if call is None:
        return False
    if isinstance(event, ev.CallerJoined):  # (sent back to a queue it was in: not again)
        return call.hungup_at is None and event.queue not in call.queues
    if isinstance(event, ev.AgentRinging | ev.AgentNoAnswer):
        return call.hungup_at is None and not call.answered and not call.abandoned
    if isinstance(event, ev.AgentAnswered):
        return not call.answered and not call.abandoned
    if isinstance(event, ev.AgentFinished):
        if event.reason == TRANSFER_REASON:
            return _ends_a_transfer(event, call, handed_over)
        return call.answered and not call.agent_done
    if isinstance(event, ev.CallerAbandoned):
        return not call.abandoned and not call.answered
    if isinstance(event, ev.ChannelHungUp):
        return call.hungup_at is None
    if isinstance(event, ev.CallTransferred):
        return _transfers(event, call)
    return False


def _ends_a_transfer(event: ev.AgentFinished, call: LiveCall,
                     handed_over: LiveCall | None) -> bool:  # fmt: skip
    """AgentComplete Reason transfer: it closes the first part a transfer event handed over,
    or hands `call` over itself when it is the member's call still connected (it came before
    the transfer event). Without the caller's block (the book finds it by linkedid) it is not
    replayed."""
    if not event.chan.uniqueid:
        return False
    return handed_over is not None or _members_own(event, call)


def _members_own(event: ev.AgentFinished, call: LiveCall) -> bool:
    """The AgentComplete is of `call`'s own member, connected to it: not the one of the
    transfer that opened a transfer card (attended: answered by the target outside the queue;
    blind: not answered yet, or in another queue)."""
    return (call.answered and not call.agent_done and call.queue == event.queue
            and call.interface == event.interface)  # fmt: skip


def _transfers(event: ev.CallTransferred, call: LiveCall) -> bool:
    """A successful transfer of `call`'s caller: it hands an answered call over, or gives the
    transfer card its AgentComplete opened the transfer's details."""
    if event.result != "Success" or event.dest_type == "Threeway":
        return False
    if call.transfer_of and not call.transfer_kind:
        return True
    if not call.answered or call.hungup_at is not None:
        return False
    return not call.transfer_of or _transfers_again(event, call)


def _transfers_again(event: ev.CallTransferred, card: LiveCall) -> bool:
    """Whether a transfer of an answered transfer card's caller is a new one, not the transfer
    that opened the card: the caller was on this card (CCROUTER_CARD: routed again after a
    blind transfer), or was transferred by the card's own operator (the transfer that opened
    it came from the operator before; an attended transfer's caller keeps the first card's
    CCROUTER_CARD). A blind transfer card's caller still on the card before was not routed
    again: taken for the opening transfer."""
    on = event.transferee.card if event.transferee is not None else ""
    if on and on == card.card:
        return True
    if on and on == card.transfer_of and card.transfer_kind == "blind":
        return False
    return interface_of(event.transferer_channel) == card.interface


def _opened(event: ev.DomainEvent, card: LiveCall) -> bool:
    """Is `event` the transfer (or its AgentComplete) that opened the transfer card `card`?"""
    if isinstance(event, ev.CallTransferred):
        return (event.result == "Success" and event.dest_type != "Threeway"
                and not (card.answered and _transfers_again(event, card)))  # fmt: skip
    if isinstance(event, ev.AgentFinished) and event.reason == TRANSFER_REASON:
        return not _members_own(event, card)
    return False


def first_parts(events: Sequence[ev.DomainEvent],
                find: Callable[[str], LiveCall | None]) -> set[int]:  # fmt: skip
    """The indexes of a gap's `events` (oldest first) that are about a call's part before the
    transfer that opened a transfer card the book restored (`find`: the live call on a
    channel, before anything of the gap is applied). The old holder applied them (it applied
    the transfer after them); on the channel's call, the transfer card, they would read as its
    own. None when the transfer came before the gap."""
    about: dict[str, list[int]] = {}
    for k, event in enumerate(events):
        key = call_key(event)
        if key is not None and key[0]:
            about.setdefault(key[0], []).append(k)
    before: set[int] = set()
    for uniqueid, indexes in about.items():
        card = find(uniqueid)
        if card is None or not card.transfer_of:
            continue
        opening = next((k for k in indexes if _opened(events[k], card)), None)
        if opening is not None:
            before.update(k for k in indexes if k < opening)
    return before


__all__ = ["REPLAYED", "Watched", "call_key", "first_parts", "missed", "replayable"]

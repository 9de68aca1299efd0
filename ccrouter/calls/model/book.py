"""The call book: live calls and the card writes their events cause. Pure.

A call is keyed by the uniqueid of the caller's channel (the one that runs the AGI and sits in the
queue; for a Local channel that is the `;2` half) and also indexed by `Linkedid`, which every leg
shares. Events of one call arrive out of order across channels (`AgentComplete` after the caller's
`Hangup`), so a card is closed only when all its parts are in: the caller's channel is gone, and an
answered call has its `AgentComplete` — or when `close_grace_s` has passed since the hang-up.

This module opens and updates calls: what the route script, the IVR and the features report, the AMI
events (`apply`) and what a resync finds (`adopt`, `bridged`). The live calls' indexes and how a
call ends are `LiveCalls` (`closing.py`), which `CallBook` extends through `TransferBook`
(`transfer.py`: a transferred call's new card); its values are in `live.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ccrouter.calls.model.cards import (
    CardKind,
    CardState,
    CardWrite,
    CloseReason,
    Outcome,
    is_valid_card_number,
)
from ccrouter.calls.model.live import LiveCall, Routed
from ccrouter.calls.model.transfer import TRANSFER_REASON, TransferBook
from ccrouter.pbx import events as ev

_CardWrite = ev.builder(CardWrite)  # the same CardWrite, built faster (one or two per event)

# Enum `.value` is a Python-level property: the per-event paths use the plain strings.
_INBOUND, _OPEN = CardKind.INBOUND.value, CardState.OPEN.value
_ANSWERED, _ABANDONED = Outcome.ANSWERED.value, Outcome.ABANDONED.value
_SHORT_ABANDON = Outcome.SHORT_ABANDON.value


class CallBook(TransferBook):
    def __init__(
        self,
        *,
        new_number: Callable[[], str],
        short_abandon_s: int = 5,
        close_grace_s: float = 10.0,
    ) -> None:
        super().__init__(close_grace_s=close_grace_s)
        self._new_number = new_number
        self._short_abandon_s = short_abandon_s
        self._handlers: dict[type[Any], Callable[[Any], list[CardWrite]]] = {
            ev.CallerJoined: self._joined,
            ev.AgentRinging: self._ringing,
            ev.AgentNoAnswer: self._no_answer,
            ev.AgentAnswered: self._answered,
            ev.AgentFinished: self._finished,
            ev.CallerAbandoned: self._abandoned,
            ev.ChannelHungUp: self._hungup,
            ev.CallTransferred: self._transferred,
            ev.MemberAdded: self._member_named,
            ev.MemberChanged: self._member_named,
        }

    def _open_inbound(
        self, *, card: str, at: float, chan: ev.ChannelRef, dialled: str, routed: bool,
        extra: Mapping[str, Any] | None = None,
    ) -> tuple[LiveCall, CardWrite]:
        """Track a new inbound call and the insert that opens its card."""
        call = LiveCall(card=card, uniqueid=chan.uniqueid, started_at=at, linkedid=chan.linkedid,
                        channel=chan.channel, caller_num=chan.caller_num,
                        caller_name=chan.caller_name, routed=routed)  # fmt: skip
        self._by_uniqueid[call.uniqueid] = call
        if call.linkedid and call.linkedid not in self._by_linkedid:
            self._by_linkedid[call.linkedid] = call
        row: dict[str, Any] = {
            "kind": _INBOUND,
            "state": _OPEN,
            "uniqueid": call.uniqueid,
            "channel": call.channel,
            "caller_num": call.caller_num,
            "caller_name": call.caller_name,
            "dialled": dialled,
            "started_at": at,
        }
        if call.linkedid:
            row["linkedid"] = call.linkedid
        row.update(extra or {})
        return call, _CardWrite(card, row, insert=True)

    # --- calls first seen by the route script ------------------------------------------------

    def open_routed(
        self,
        *,
        at: float,
        uniqueid: str,
        channel: str,
        caller_num: str,
        caller_name: str,
        dialled: str,
        decision: Routed,
        repeat_of: str | None = None,
    ) -> tuple[str, list[CardWrite]]:
        """The route script decided for this channel: open its card (or re-route a known call)."""
        routing: dict[str, Any] = {
            "language": decision.language,
            "product": decision.product,
            "target": decision.target,
            "queue": decision.queue,
            "priority": decision.priority,
        }
        call = self._by_uniqueid.get(uniqueid)
        if call is not None:  # routed again on the same channel (e.g. a second AGI in the dialplan)
            call.routed, call.queue = True, decision.queue
            if repeat_of:
                routing["repeat_of"] = repeat_of
            return call.card, [_CardWrite(call.card, routing)]
        if repeat_of:
            routing["repeat_of"] = repeat_of
        chan = _chan(uniqueid, channel, caller_num, caller_name)
        call, insert = self._open_inbound(card=self._new_number(), at=at, chan=chan,
                                          dialled=dialled, routed=True, extra=routing)  # fmt: skip
        call.queue = decision.queue
        return call.card, [insert]

    def open_ivr(
        self, *, at: float, uniqueid: str, channel: str, caller_num: str, caller_name: str,
        dialled: str,
    ) -> tuple[str, list[CardWrite]]:
        """The IVR answered this channel: open its card now (routing comes later through
        `open_routed` on the same uniqueid). A call already known keeps its card."""
        call = self._by_uniqueid.get(uniqueid)
        if call is not None:
            return call.card, []
        chan = _chan(uniqueid, channel, caller_num, caller_name)
        call, insert = self._open_inbound(card=self._new_number(), at=at, chan=chan,
                                          dialled=dialled, routed=True)  # fmt: skip
        return call.card, [insert]

    def note(
        self, *, uniqueid: str, fields: Mapping[str, Any], outcome: str = ""
    ) -> list[CardWrite]:
        """What the IVR or the survey learnt about a live call (ivr_path, language, csat...);
        `outcome` presets the card's final outcome (e.g. out_of_hours)."""
        call = self._by_uniqueid.get(uniqueid)
        if call is None:
            return []
        if outcome:
            call.preset_outcome = outcome
        return [_CardWrite(call.card, dict(fields))] if fields else []

    def open_leg(
        self, *, at: float, uniqueid: str, card: str, caller_num: str, fields: Mapping[str, Any]
    ) -> list[CardWrite]:
        """A call ccrouter originates (a feature's leg: Originate ChannelId = `uniqueid`): its
        card opens now with `fields` (kind, target, the feature's own...); queue events then
        update it."""
        call = LiveCall(card=card, uniqueid=uniqueid, started_at=at, linkedid=uniqueid,
                        caller_num=caller_num, routed=True)  # fmt: skip
        self._by_uniqueid[uniqueid] = call
        self._by_linkedid[uniqueid] = call
        row = {"state": CardState.OPEN.value, "uniqueid": uniqueid, "linkedid": uniqueid,
               "caller_num": caller_num, "started_at": at, **fields}  # fmt: skip
        return [_CardWrite(card, row, insert=True)]

    def leg_failed(self, *, uniqueid: str, card: str, at: float, outcome: str) -> list[CardWrite]:
        """An originated leg that was never answered (busy, no answer...): close its card (its
        Hangup may have closed it already: the outcome is written anyway)."""
        call = self._by_uniqueid.get(uniqueid)
        if call is None:
            return [_CardWrite(card, {"outcome": outcome})]
        call.preset_outcome = outcome
        return self._close(call, at, CloseReason.NORMAL)

    def waiting_since(self, queue: str) -> float | None:
        """When the longest-waiting live caller of `queue` started (None: nobody waits)."""
        starts = [
            c.started_at
            for c in self._by_uniqueid.values()
            if c.joined and c.queue == queue and not c.answered and not c.abandoned
            and c.hungup_at is None
        ]  # fmt: skip
        return min(starts, default=None)

    def route_failed(self, *, uniqueid: str, reason: str) -> list[CardWrite]:
        call = self._by_uniqueid.get(uniqueid)
        if call is None:
            return []
        call.route_failed = True
        return [_CardWrite(call.card, {"end_reason": reason})]

    # --- AMI events ----------------------------------------------------------------------------

    def apply(self, event: ev.DomainEvent) -> list[CardWrite]:
        handler = self._handlers.get(type(event))
        return handler(event) if handler is not None else []

    def _call_for(self, chan: ev.ChannelRef) -> LiveCall | None:
        call = self._by_uniqueid.get(chan.uniqueid)
        if call is not None and chan.linkedid and not call.linkedid:
            call.linkedid = chan.linkedid
            self._by_linkedid[chan.linkedid] = call
        return call

    def _joined(self, e: ev.CallerJoined) -> list[CardWrite]:
        call = self._call_for(e.chan)
        writes: list[CardWrite] = []
        if call is None:  # first sight: a queue call that did not come through our route script
            call, insert = self._open_inbound(card=self._card_for(e.chan), at=e.at, chan=e.chan,
                                              dialled=e.chan.exten, routed=False)  # fmt: skip
            writes.append(insert)
        fields: dict[str, Any] = {"linkedid": call.linkedid, "queue": e.queue}
        if call.queues and call.queues[-1] != e.queue:  # overflow into another queue
            fields["escalation"] = "->".join([*call.queues, e.queue])
        call.queues.append(e.queue)
        call.joined, call.queue = True, e.queue
        if call.joined_at is None:
            call.joined_at = e.at
        writes.append(_CardWrite(call.card, fields))
        return writes

    def _card_for(self, chan: ev.ChannelRef) -> str:
        """The card of a call first seen in an event: the channel's own CCROUTER_CARD when
        Asterisk reports a valid one that no live call holds (the card of a call routed just
        before a crash, whose insert died uncommitted), else a new number."""
        card = chan.card
        if card and is_valid_card_number(card) and self.holder(card) is None:
            return card
        return self._new_number()

    def adopt(self, *, at: float, chan: ev.ChannelRef) -> list[CardWrite]:
        """A live channel carrying a valid CCROUTER_CARD that no live call holds (seen at a
        resync): track it under that card again. The card row is (re)written, so a card lost
        in a crash before its insert was committed exists again with the number the caller
        was given."""
        if not is_valid_card_number(chan.card) or self.holder(chan.card) is not None:
            return []
        if chan.uniqueid in self._by_uniqueid:
            return []
        _call, insert = self._open_inbound(card=chan.card, at=at, chan=chan, dialled=chan.exten,
                                           routed=True)  # fmt: skip
        return [insert]

    def bridged(
        self, *, at: float, uniqueid: str, interface: str, operator: str
    ) -> list[CardWrite]:
        """A resync found this call's channel in a bridge with an operator's channel (it was
        answered while AMI was away): mark it answered by `interface` (`operator`: the member
        name, "" when unknown). A call already known to be answered is left alone."""
        call = self._by_uniqueid.get(uniqueid)
        if call is None or call.answered or call.hungup_at is not None:
            return []
        call.answered, call.ringing = True, ""
        call.operator, call.interface = operator, interface
        self._agents.connect(call.queue, interface, call.uniqueid)
        fields: dict[str, Any] = {
            "answered_at": at,
            "operator": operator,
            "interface": interface,
            "outcome": Outcome.ANSWERED.value,
        }
        return [_CardWrite(call.card, fields)]

    def _ringing(self, e: ev.AgentRinging) -> list[CardWrite]:
        call = self._call_for(e.chan)
        if call is not None:
            call.ringing = e.member_name or e.interface
        return []

    def _no_answer(self, e: ev.AgentNoAnswer) -> list[CardWrite]:
        call = self._call_for(e.chan)
        if call is not None:
            call.ringing = ""
        return []

    def _answered(self, e: ev.AgentAnswered) -> list[CardWrite]:
        call = self._call_for(e.chan)
        if call is None:
            return []
        call.answered, call.ringing = True, ""
        call.operator, call.interface = e.member_name, e.interface
        self._agents.connect(e.queue, e.interface, call.uniqueid)
        self._seen_member(e.interface, e.member_name)
        return [
            _CardWrite(
                call.card,
                {
                    "answered_at": e.at,
                    "wait_s": e.hold_time,
                    "ring_s": e.ring_time,
                    "operator": e.member_name,
                    "interface": e.interface,
                    "queue": e.queue,
                    "outcome": _ANSWERED,
                },
            )
        ]

    def _finished(self, e: ev.AgentFinished) -> list[CardWrite]:
        if e.reason == TRANSFER_REASON:
            transfer = self._finished_transfer(e)
            if transfer is not None:
                return transfer
        call = self._call_for(e.chan) if e.chan.uniqueid else self._finished_unnamed(e)
        if call is None:
            return []
        call.agent_done = True
        self._agents.release(call.uniqueid)
        writes = [_CardWrite(call.card, {"talk_s": e.talk_time, "end_reason": e.reason})]
        return writes + self._close_if_complete(call, e.at)

    def _finished_unnamed(self, e: ev.AgentFinished) -> LiveCall | None:
        """The call of an AgentComplete without the caller's block: by the linkedid of the
        member's block (a call of that member still waiting for its AgentComplete), else the
        call connected to that member (queue, interface)."""
        call = self._by_linkedid.get(e.chan.linkedid) if e.chan.linkedid else None
        if call is not None and call.interface == e.interface and not call.agent_done:
            return call
        return self._by_uniqueid.get(self._agents.connected(e.queue, e.interface))

    def _abandoned(self, e: ev.CallerAbandoned) -> list[CardWrite]:
        call = self._call_for(e.chan)
        if call is None:
            return []
        call.abandoned = True
        short = call.short_abandon = e.hold_time < self._short_abandon_s
        outcome = _SHORT_ABANDON if short else _ABANDONED
        return [_CardWrite(call.card, {"wait_s": e.hold_time, "outcome": outcome})]

    def _hungup(self, e: ev.ChannelHungUp) -> list[CardWrite]:
        call = self._by_uniqueid.get(e.uniqueid)
        if call is None:  # an operator's leg, or a channel we never tracked
            return []
        call.hungup_at = e.at
        if not call.answered and not call.abandoned:
            call.ringing = ""
        writes = [] if call.answered else [_CardWrite(call.card, {"end_reason": e.cause_txt})]
        return writes + self._talk_at_hangup(call, e.at) + self._close_if_complete(call, e.at)


def _chan(uniqueid: str, channel: str, caller_num: str, caller_name: str) -> ev.ChannelRef:
    """The caller channel as the route script sees it (the queue events bring the linkedid)."""
    return ev.ChannelRef(uniqueid=uniqueid, linkedid="", channel=channel, caller_num=caller_num,
                         caller_name=caller_name, exten="", context="")

"""Transfers in the call book: the part of a call after an operator transferred it gets a card
of its own. Pure.

An operator transfers the caller (`BlindTransfer` / `AttendedTransfer`, Result Success, the
caller as Transferee; see `ccrouter.pbx.ami.transfers`): the call's card ends there (outcome
answered, `end_reason` transfer, its talk time from app_queue's `AgentComplete` `Reason:
transfer`) and a card of kind `transfer` opens on the same caller channel, `transfer_of` the
first. The caller's channel keeps its uniqueid and linkedid, so the events that follow (the
route script and the queue of a blind transfer's destination, or the hang-up of an attended
transfer's new bridge) land on the new card like any call's. The first card waits for its
`AgentComplete` (it may come before or after the transfer event) for at most `close_grace_s`.

An attended transfer leaves the caller bridged with the transfer target, outside any queue:
that card is answered at the transfer by the target's device, needs no `AgentComplete`, and
its talk time runs to the hang-up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ccrouter.calls.model.cards import CardKind, CardState, CardWrite, CloseReason, Outcome
from ccrouter.calls.model.closing import LiveCalls
from ccrouter.calls.model.live import LiveCall
from ccrouter.pbx import events as ev

TRANSFER_REASON = "transfer"  # AgentComplete Reason (apps/app_queue.c send_agent_complete)


class TransferBook(LiveCalls):
    _new_number: Callable[[], str]

    def __init__(self, *, close_grace_s: float) -> None:
        super().__init__(close_grace_s=close_grace_s)
        self._handed_over: dict[str, tuple[LiveCall, float, float]] = {}
        """uniqueid -> a transferred call's first part, waiting for its AgentComplete: (the
        part, when it ended — the transfer —, since when it waits)."""
        self._names: dict[str, str] = {}
        """interface -> the member name AgentConnect gave it (an attended target's name)."""

    def _seen_member(self, interface: str, name: str) -> None:
        if name:
            self._names[interface] = name

    def _member_named(self, e: ev.MemberAdded | ev.MemberChanged) -> list[CardWrite]:
        self._seen_member(e.member.interface, e.member.member_name)
        return []

    def members_named(self, names: Mapping[str, str]) -> None:
        """Queue members' names by interface (a resync's QueueStatus)."""
        for interface, name in names.items():
            self._seen_member(interface, name)

    def _transferred(self, e: ev.CallTransferred) -> list[CardWrite]:
        if e.result != "Success" or e.transferee is None or e.dest_type == "Threeway":
            return []  # app_queue ends no queue call on these either
        call = self._by_uniqueid.get(e.transferee.uniqueid)
        if call is None:
            return []
        if call.transfer_of and not call.transfer_kind:  # AgentComplete opened it already
            return self._details(call, e)
        if not call.answered or call.hungup_at is not None:
            return []
        waits = self._agents.connected(call.queue, call.interface) == call.uniqueid
        new, writes = self._hand_over(call, e.at)
        if waits:
            self._handed_over[call.uniqueid] = (call, e.at, e.at)
        else:  # not a queue call: no AgentComplete will come
            writes += self._close(call, e.at, CloseReason.NORMAL)
        return writes + self._details(new, e)

    def _finished_transfer(self, e: ev.AgentFinished) -> list[CardWrite] | None:
        """AgentComplete Reason transfer: the first part's card ends. None: not a call this
        book transferred or can transfer (the caller's block is absent): the usual path."""
        uniqueid = e.chan.uniqueid
        held = self._handed_over.pop(uniqueid, None) if uniqueid else None
        writes: list[CardWrite] = []
        ended = e.at
        if held is not None:
            first, ended, _since = held  # its part ended at the transfer
        else:
            live = self._by_uniqueid.get(uniqueid) if uniqueid else None
            if live is None or not live.answered or live.hungup_at is not None:
                return None
            first = live  # before the transfer event: hand over now, its details come later
            _new, writes = self._hand_over(live, e.at)
        first.agent_done = True
        writes.append(CardWrite(first.card, {"talk_s": e.talk_time,
                                             "end_reason": TRANSFER_REASON}))  # fmt: skip
        return writes + self._close(first, ended, CloseReason.NORMAL)

    def handed_over(self, uniqueid: str) -> LiveCall | None:
        """The first part of the call on this channel, transferred and waiting for its
        AgentComplete (the call `find` gives is the transfer card then)."""
        held = self._handed_over.get(uniqueid)
        return held[0] if held is not None else None

    def _restored(self, card: Mapping[str, Any]) -> LiveCall | None:
        """A transfer card comes back with what its events had made of it: the card it
        follows, and whether its transfer event was applied (`transfer_kind`: a blind one wrote
        where the caller was sent, an attended one the target who answered outside any queue —
        whose talk time then runs to the hang-up, with no AgentComplete to wait for)."""
        call = super()._restored(card)
        if call is None or not card.get("transfer_of"):
            return call
        call.transfer_of, call.routed = str(card["transfer_of"]), True
        call.joined = bool(call.queue)  # its insert has the linkedid: a queue sets `queue`
        if call.answered and not call.queue:
            call.transfer_kind, call.agent_done = "attended", True
            call.talk_from = float(card["answered_at"])
        elif card.get("dialled"):
            call.transfer_kind = "blind"
        return call

    def _restored_beside(self, held: LiveCall, call: LiveCall, now: float) -> bool:
        """The transfer card of `held` (both open: the old holder had the transfer, not yet its
        AgentComplete) is the channel's call; `held` waits for that AgentComplete again, its
        part ended when the transfer card opened, its grace counted from `now`."""
        if call.transfer_of != held.card:
            return False
        self._agents.release(held.uniqueid)
        self._handed_over[held.uniqueid] = (held, call.started_at, max(now, call.started_at))
        return True

    def _hand_over(self, call: LiveCall, at: float) -> tuple[LiveCall, list[CardWrite]]:
        """Open the transfer card on `call`'s channel; `call` leaves the live indexes."""
        self._agents.release(call.uniqueid)
        new = LiveCall(card=self._new_number(), uniqueid=call.uniqueid, started_at=at,
                       linkedid=call.linkedid, channel=call.channel, caller_num=call.caller_num,
                       caller_name=call.caller_name, routed=True,
                       transfer_of=call.card)  # fmt: skip
        self._by_uniqueid[new.uniqueid] = new
        if new.linkedid:
            self._by_linkedid[new.linkedid] = new
        row: dict[str, Any] = {
            "kind": CardKind.TRANSFER.value, "state": CardState.OPEN.value,
            "uniqueid": new.uniqueid, "channel": new.channel, "caller_num": new.caller_num,
            "caller_name": new.caller_name, "started_at": at, "transfer_of": call.card,
        }  # fmt: skip
        if new.linkedid:
            row["linkedid"] = new.linkedid
        return new, [CardWrite(call.card, {"end_reason": TRANSFER_REASON}),
                     CardWrite(new.card, row, insert=True)]  # fmt: skip

    def _details(self, new: LiveCall, e: ev.CallTransferred) -> list[CardWrite]:
        """What the transfer event says of the new part: a blind transfer's destination, or
        the attended transfer's target, who talks with the caller from now on."""
        new.transfer_kind = e.kind
        if e.kind == "blind":
            return [CardWrite(new.card, {"dialled": e.extension})] if e.extension else []
        if not e.target_uniqueid:  # DestType App (or a target Asterisk did not report): nobody
            return []
        operator = self._names.get(e.target_interface, "")
        new.answered, new.agent_done, new.talk_from = True, True, e.at
        new.operator, new.interface = operator, e.target_interface
        fields = {"answered_at": e.at, "wait_s": 0, "ring_s": 0, "operator": operator,
                  "interface": e.target_interface, "outcome": Outcome.ANSWERED.value}  # fmt: skip
        return [CardWrite(new.card, fields)]

    def _talk_at_hangup(self, call: LiveCall, at: float) -> list[CardWrite]:
        """An attended transfer's card: its talk time, from the transfer to the hang-up."""
        if call.talk_from is None:
            return []
        return [CardWrite(call.card, {"talk_s": round(at - call.talk_from)})]

    def expire(self, now: float) -> list[CardWrite]:
        writes = super().expire(now)
        deadline = now - self._close_grace_s
        for uniqueid, (first, at, since) in list(self._handed_over.items()):
            if since <= deadline:
                del self._handed_over[uniqueid]
                writes += self._close(first, at, CloseReason.INCOMPLETE)
        return writes

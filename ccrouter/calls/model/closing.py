"""The live calls of the call book and how each one ends. Pure.

`LiveCalls` holds the live calls, indexed by uniqueid and linkedid, with the call each queue
member is connected to; it reads them (`find`, `holder`, `views`) and closes them: when all the
parts of a call are in, when `close_grace_s` has passed since the hang-up (`expire`), when
Asterisk no longer has the channel after a reconnect (`reconcile`). It also loads back the cards
left open by a crash (`restore`). `CallBook` (`book.py`) adds what opens and updates calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ccrouter.calls.model.agent_index import AgentIndex
from ccrouter.calls.model.cards import CardState, CardWrite, CloseReason, Outcome
from ccrouter.calls.model.live import CallView, LiveCall
from ccrouter.pbx import events as ev

_CardWrite = ev.builder(CardWrite)  # the same CardWrite, built faster
_CLOSED = CardState.CLOSED.value


class LiveCalls:
    def __init__(self, *, close_grace_s: float) -> None:
        self._close_grace_s = close_grace_s
        self._by_uniqueid: dict[str, LiveCall] = {}
        self._by_linkedid: dict[str, LiveCall] = {}
        self._agents = AgentIndex()  # the call each member is connected to (AgentConnect)

    # --- reading --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._by_uniqueid)

    def find(self, *, uniqueid: str = "", linkedid: str = "") -> LiveCall | None:
        call = self._by_uniqueid.get(uniqueid) if uniqueid else None
        if call is None and linkedid:
            call = self._by_linkedid.get(linkedid)
        return call

    def views(self) -> list[CallView]:
        return [
            CallView(
                card=c.card,
                uniqueid=c.uniqueid,
                linkedid=c.linkedid,
                caller_num=c.caller_num,
                queue=c.queue,
                started_at=c.started_at,
                answered=c.answered,
                operator=c.operator,
                ringing=c.ringing,
            )
            for c in self._by_uniqueid.values()
        ]

    def holder(self, card: str) -> LiveCall | None:
        """The live call holding card number `card` (a scan: only for rare paths)."""
        return next((c for c in self._by_uniqueid.values() if c.card == card), None)

    # --- closing ---------------------------------------------------------------------------

    def _close_if_complete(self, call: LiveCall, at: float) -> list[CardWrite]:
        if call.hungup_at is None or (call.answered and not call.agent_done):
            return []
        return self._close(call, max(at, call.hungup_at), CloseReason.NORMAL)

    def _final_outcome(self, call: LiveCall, lost: bool) -> Outcome:
        if call.answered:
            return Outcome.ANSWERED
        if call.abandoned:
            return Outcome.SHORT_ABANDON if call.short_abandon else Outcome.ABANDONED
        if lost:
            return Outcome.LOST
        if call.joined:
            return Outcome.OVERFLOW
        if call.route_failed:
            return Outcome.FAILED
        return Outcome.IVR_ONLY if call.routed else Outcome.FAILED

    def _close(self, call: LiveCall, at: float, reason: CloseReason) -> list[CardWrite]:
        if self._by_uniqueid.get(call.uniqueid) is call:  # not a transfer card's original
            del self._by_uniqueid[call.uniqueid]
            self._agents.release(call.uniqueid)
        if call.linkedid and self._by_linkedid.get(call.linkedid) is call:
            del self._by_linkedid[call.linkedid]
        lost = reason in (CloseReason.RECONCILED, CloseReason.LOST_ON_PBX_RESTART)
        fields: dict[str, Any] = {
            "state": _CLOSED,
            "ended_at": at,
            "close_reason": reason.value,
            "outcome": call.preset_outcome
            or self._final_outcome(call, lost and call.hungup_at is None).value,
        }
        return [_CardWrite(call.card, fields)]

    def expire(self, now: float) -> list[CardWrite]:
        """Close calls whose caller hung up more than `close_grace_s` ago with parts missing."""
        writes: list[CardWrite] = []
        deadline = now - self._close_grace_s
        for call in [c for c in self._by_uniqueid.values() if c.hungup_at is not None]:
            if call.hungup_at is not None and call.hungup_at <= deadline:
                writes += self._close(call, call.hungup_at, CloseReason.INCOMPLETE)
        return writes

    def reconcile(
        self, alive: Iterable[str], *, seen_before: float, pbx_restarted: bool, now: float
    ) -> list[CardWrite]:
        """After a (re)connect: close calls whose channel no longer exists in Asterisk.

        `alive` are the uniqueids Asterisk reports (CoreShowChannels); only calls first seen
        before `seen_before` (when the snapshot was requested) are judged.
        """
        alive_set = set(alive)
        reason = CloseReason.LOST_ON_PBX_RESTART if pbx_restarted else CloseReason.RECONCILED
        writes: list[CardWrite] = []
        for call in list(self._by_uniqueid.values()):
            if call.started_at < seen_before and call.uniqueid not in alive_set:
                writes += self._close(call, call.hungup_at or now, reason)
        return writes

    def restore(self, cards: Iterable[Mapping[str, Any]], *, now: float = 0.0) -> None:
        """Load cards left open (after a crash, or by the instance that held the node) back as
        live calls, to be reconciled; oldest first, so a channel's newest card is its call (a
        transfer card, whose first part `_restored_beside` keeps). `now`: when (a part still
        waiting for an event counts its grace from then)."""
        for card in cards:
            call = self._restored(card)
            if call is None:
                continue
            held = self._by_uniqueid.get(call.uniqueid)
            if held is not None and not self._restored_beside(held, call, now):
                continue
            self._by_uniqueid[call.uniqueid] = call
            if call.linkedid:
                self._by_linkedid[call.linkedid] = call
            if call.answered and call.interface and not call.agent_done:
                self._agents.connect(call.queue, call.interface, call.uniqueid)

    def _restored(self, card: Mapping[str, Any]) -> LiveCall | None:
        """The live call of an open card row (None without a uniqueid: nothing to find it by)."""
        uniqueid = card.get("uniqueid") or ""
        if not uniqueid:
            return None
        queue, joined = card.get("queue") or "", bool(card.get("linkedid"))
        escalation = card.get("escalation") or ""  # the queues it went through: "a->b"
        return LiveCall(
            card=card["number"],
            uniqueid=uniqueid,
            started_at=float(card.get("started_at") or 0.0),
            linkedid=card.get("linkedid") or "",
            channel=card.get("channel") or "",
            caller_num=card.get("caller_num") or "",
            caller_name=card.get("caller_name") or "",
            queue=queue,
            routed=bool(card.get("target")),
            joined=joined,
            queues=escalation.split("->") if escalation else [queue] if queue and joined else [],
            answered=card.get("answered_at") is not None,
            operator=card.get("operator") or "",
            interface=card.get("interface") or "",
            abandoned=card.get("outcome") in (Outcome.ABANDONED, Outcome.SHORT_ABANDON),
            short_abandon=card.get("outcome") == Outcome.SHORT_ABANDON,
        )

    def _restored_beside(self, held: LiveCall, call: LiveCall, now: float) -> bool:
        """A second open card on `held`'s channel: whether `call` becomes the channel's call
        (see `TransferBook`); by default the first card restored keeps it."""
        return False

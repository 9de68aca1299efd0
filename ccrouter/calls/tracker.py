"""The call tracker: AMI events and route decisions -> call state -> card writes.

It owns the pure `CallBook`, stamps events with the receive time, hands card writes to the card
writer (never waiting on it), resyncs with Asterisk after every (re)connect, and closes calls
whose last events never came.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

import structlog

from ccrouter.calls.model import gap
from ccrouter.calls.model.book import CallBook
from ccrouter.calls.model.cards import CardWrite
from ccrouter.calls.model.live import Routed
from ccrouter.pbx import events as ev
from ccrouter.pbx.ami.translate import (
    BadEvent,
    caller_from_queue_entry,
    channel_from_item,
    header,
    interface_of,
    translate,
)

log = structlog.get_logger(__name__)

_SKIPPED_NAMES_LOGGED = 256
"""Distinct skipped event names logged (Asterisk has a few hundred; a broken peer, any)."""


class CardSink(Protocol):
    def submit(self, write: CardWrite) -> None: ...


class AmiSender(Protocol):
    async def send(
        self, action: Mapping[str, Any], *, as_list: bool = False, timeout: float | None = None
    ) -> Any: ...


Listener = Callable[[ev.DomainEvent], None]


class CallTracker:
    def __init__(
        self,
        book: CallBook,
        cards: CardSink,
        *,
        clock: Callable[[], float] = time.time,
        sweep_interval_s: float = 1.0,
    ) -> None:
        self.book = book
        self._cards = cards
        self._clock = clock
        self._sweep_interval_s = sweep_interval_s
        self._listeners: list[Listener] = []
        self._pbx_started: str | None = None
        self._pbx_shut_down = False  # a Shutdown event came: the next resync follows a restart
        self.events_seen = 0
        self.bad_events = 0
        self.events_skipped = 0
        self._skipped_names: set[str] = set()
        self._held: list[gap.Watched] | None = None
        """AMI events received while the tracker waits for a gap's events (`hold`)."""

    def subscribe(self, listener: Listener) -> None:
        """`listener(event)` is called for every domain event, after the book applied it."""
        self._listeners.append(listener)

    # --- inputs ----------------------------------------------------------------------------

    def on_ami_event(self, msg: Mapping[str, Any]) -> None:
        """The AMI event sink (sync: it runs inside the protocol's data_received)."""
        if self._held is not None:
            self._held.append((self._clock(), msg))
            return
        self._on_ami_event(msg, self._clock())

    def _on_ami_event(self, msg: Mapping[str, Any], at: float) -> None:
        self.events_seen += 1
        try:
            event = translate(msg, at)
        except BadEvent as e:
            self.bad_events += 1
            log.warning("ami_bad_event", error=str(e))
            return
        if event is None:
            self._skipped(msg)
            return
        self.apply(event)

    def _skipped(self, msg: Mapping[str, Any]) -> None:
        """An event ccrouter has no use for (the AMI Filter keeps them away from a real
        Asterisk): counted, and logged at debug level only the first time its name is seen (a
        structlog call costs microseconds even when its level is off)."""
        self.events_skipped += 1
        name = header(msg, "Event")
        if name not in self._skipped_names and len(self._skipped_names) < _SKIPPED_NAMES_LOGGED:
            self._skipped_names.add(name)
            log.debug("ami_event_skipped", ami_event=name)

    def apply(self, event: ev.DomainEvent) -> None:
        if isinstance(event, ev.PbxShutdown):
            self._pbx_shut_down = True
            log.warning("pbx_shutting_down", restart=event.restart)
        writes = self.book.apply(event)
        if writes:
            self._submit(writes)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("tracker_listener_failed", event=type(event).__name__)

    # --- a gap seen by another connection (a cluster standby's) -----------------------------

    def hold(self) -> None:
        """Keep the AMI events that come from now on, unapplied, until `catch_up`: those of a
        gap, older, are applied first (a node taken over; see `ccrouter.calls.model.gap`)."""
        if self._held is None:
            self._held = []

    def catch_up(self, watched: Sequence[gap.Watched]) -> int:
        """Apply the events of `watched` (another connection's, oldest first) that this one
        did not receive and that change a live call as its card does not show yet (not those
        of a call's part before the transfer that opened its restored transfer card), then the
        events held since `hold`, in order, and go live again. Returns how many watched
        events were applied."""
        held, self._held = self._held or [], None
        gap_events: list[tuple[ev.DomainEvent, tuple[str, str]]] = []
        for at, msg in gap.missed(watched, held):
            try:
                event = translate(msg, at)
            except BadEvent as e:
                log.warning("ami_bad_event", error=str(e))
                continue
            key = None if event is None else gap.call_key(event)
            if event is not None and key is not None:
                gap_events.append((event, key))
        applied_before = gap.first_parts(
            [e for e, _ in gap_events], lambda uniqueid: self.book.find(uniqueid=uniqueid)
        )
        applied = 0
        for k, (event, (uniqueid, linkedid)) in enumerate(gap_events):
            if k in applied_before:
                continue
            call = self.book.find(uniqueid=uniqueid, linkedid=linkedid)
            waiting = self.book.handed_over(uniqueid) if uniqueid else None
            if gap.replayable(event, call, waiting):
                self.apply(event)
                applied += 1
        for at, msg in held:
            self._on_ami_event(msg, at)
        log.info("ami_gap_caught_up", watched=len(watched), applied=applied, held=len(held))
        return applied

    def open_routed(
        self,
        *,
        uniqueid: str,
        channel: str,
        caller_num: str,
        caller_name: str,
        dialled: str,
        decision: Routed,
        repeat_of: str | None = None,
    ) -> str:
        card, writes = self.book.open_routed(
            at=self._clock(),
            uniqueid=uniqueid,
            channel=channel,
            caller_num=caller_num,
            caller_name=caller_name,
            dialled=dialled,
            decision=decision,
            repeat_of=repeat_of,
        )
        self._submit(writes)
        return card

    def transferred(self, uniqueid: str) -> bool:
        """Is the live call on this channel the rest of a transferred call (a transfer card)?"""
        call = self.book.find(uniqueid=uniqueid)
        return call is not None and bool(call.transfer_of)

    def open_ivr(self, *, uniqueid: str, channel: str, caller_num: str, caller_name: str,
                 dialled: str) -> str:  # fmt: skip
        """The IVR took this call: its card opens now (see `CallBook.open_ivr`)."""
        card, writes = self.book.open_ivr(at=self._clock(), uniqueid=uniqueid, channel=channel,
                                          caller_num=caller_num, caller_name=caller_name,
                                          dialled=dialled)  # fmt: skip
        self._submit(writes)
        return card

    def note(self, uniqueid: str, fields: Mapping[str, Any], outcome: str = "") -> None:
        """Card fields learnt by the IVR/survey for a live call (see `CallBook.note`)."""
        self._submit(self.book.note(uniqueid=uniqueid, fields=fields, outcome=outcome))

    def open_leg(self, *, uniqueid: str, card: str, caller_num: str,
                 fields: Mapping[str, Any]) -> None:  # fmt: skip
        """A leg a feature originated: open its card (see `CallBook.open_leg`)."""
        self._submit(self.book.open_leg(at=self._clock(), uniqueid=uniqueid, card=card,
                                        caller_num=caller_num, fields=fields))  # fmt: skip

    def leg_failed(self, *, uniqueid: str, card: str, outcome: str) -> None:
        self._submit(self.book.leg_failed(uniqueid=uniqueid, card=card, at=self._clock(),
                                          outcome=outcome))  # fmt: skip

    def _submit(self, writes: list[CardWrite]) -> None:
        for write in writes:
            self._cards.submit(write)
            if write.fields.get("state") == "closed":
                log.info("call_ended", card=write.number, outcome=write.fields.get("outcome"),
                         close_reason=write.fields.get("close_reason"))  # fmt: skip

    # --- resync and housekeeping -----------------------------------------------------------

    async def resync(self, ami: AmiSender) -> None:
        """After every AMI (re)connect: close the calls that vanished while we were away, take
        back calls whose card the channel holds but the book lost (a crash before the card was
        committed), and mark calls answered while we were away."""
        seen_before = self._clock()
        status = await ami.send({"Action": "CoreStatus"})
        started = f"{status.get('CoreStartupDate', '')} {status.get('CoreStartupTime', '')}"
        restarted = self._pbx_shut_down or (
            self._pbx_started is not None and started != self._pbx_started
        )
        items = await ami.send({"Action": "CoreShowChannels"}, as_list=True)
        channels = [m for m in items if m.get("Event") == "CoreShowChannel"]
        alive = {header(m, "Uniqueid") for m in channels}
        writes = self.book.reconcile(
            alive, seen_before=seen_before, pbx_restarted=restarted, now=self._clock()
        )
        self._submit(writes)
        cards = self._adopt(channels)
        names = await self._resync_waiting(ami, cards)
        self.book.members_named(names)
        self._resync_bridged(channels, names)
        # Only now: a resync refused half-way (the PBX still booting) runs again, and must
        # still know that the PBX restarted.
        self._pbx_started, self._pbx_shut_down = started, False
        log.info(
            "ami_resynced",
            pbx_restarted=restarted,
            channels=len(alive),
            closed=sum(1 for w in writes if w.fields.get("state") == "closed"),
            live_calls=len(self.book),
        )

    def _adopt(self, channels: list[Mapping[str, Any]]) -> dict[str, str]:
        """Channels whose CCROUTER_CARD (ChanVariable) no live call holds get their card back;
        returns uniqueid -> card of every channel reporting one."""
        cards: dict[str, str] = {}
        for item in channels:
            try:
                chan = channel_from_item(item)
            except BadEvent as e:
                log.warning("ami_bad_event", error=str(e))
                continue
            if not chan.card:
                continue
            uniqueid = chan.uniqueid
            cards[uniqueid] = chan.card
            if chan.channel.startswith("Local/") or self.book.find(uniqueid=uniqueid):
                continue  # a Local half: its call is known by the other half or by its leg
            adopted = self.book.adopt(at=self._clock(), chan=chan)
            if adopted:
                log.warning("card_taken_back_from_channel", card=chan.card, uniqueid=uniqueid)
                self._submit(adopted)
        return cards

    def _resync_bridged(self, channels: list[Mapping[str, Any]], names: Mapping[str, str]) -> None:
        """A live call whose channel shares a bridge (BridgeId) with another channel was
        answered while we were away: the other channel's name gives the operator's interface
        (`PJSIP/1001-0000000a` -> `PJSIP/1001`), QueueStatus's members its name."""
        by_bridge: dict[str, list[Mapping[str, Any]]] = {}
        for item in channels:
            bridge = header(item, "BridgeId")
            if bridge:
                by_bridge.setdefault(bridge, []).append(item)
        for members in by_bridge.values():
            for item in members:
                call = self.book.find(uniqueid=header(item, "Uniqueid"))
                if call is None or call.answered:
                    continue
                peers = [p for p in members if p is not item]
                if not peers:
                    continue
                interface = interface_of(header(peers[0], "Channel"))
                self._submit(self.book.bridged(at=self._clock(), uniqueid=call.uniqueid,
                                               interface=interface,
                                               operator=names.get(interface, "")))  # fmt: skip
                log.info("call_answered_during_ami_gap", card=call.card, interface=interface)

    async def _resync_waiting(self, ami: AmiSender, cards: Mapping[str, str]) -> dict[str, str]:
        """Callers waiting in a queue whose QueueCallerJoin we missed get their card now (the
        one their channel holds, from `cards`, else a new one). Returns the queue members'
        interface -> name."""
        items = await ami.send({"Action": "QueueStatus"}, as_list=True)
        names: dict[str, str] = {}
        for item in items:
            kind = item.get("Event")
            if kind == "QueueMember":
                names[header(item, "Location")] = header(item, "Name")
            if kind != "QueueEntry":
                continue
            try:
                joined = caller_from_queue_entry(item, self._clock())
            except BadEvent as e:
                log.warning("ami_bad_event", error=str(e))
                continue
            call = self.book.find(uniqueid=joined.chan.uniqueid)
            if call is None or call.queue != joined.queue or not call.joined:
                card = cards.get(joined.chan.uniqueid, "")
                if card:  # QueueEntry has no ChanVariable: CoreShowChannels told us the card
                    joined = replace(joined, chan=replace(joined.chan, card=card))
                self.apply(joined)
        return names

    async def run(self) -> None:
        """Close calls whose caller hung up long ago with parts still missing."""
        while True:
            await asyncio.sleep(self._sweep_interval_s)
            writes = self.book.expire(self._clock())
            if writes:
                log.warning("calls_closed_incomplete", count=len(writes))
                self._submit(writes)

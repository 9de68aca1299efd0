"""Live listening: an AMI Originate rings the supervisor's own phone with Application ChanSpy
on the operator's channel of a call; the session's course comes back as events.

The operator's channel is AgentConnect's `DestChannel` (the member half bridged with the
caller: the channel ChanSpy picked in the recorded transcript). The session is followed by the
Originate's ActionID (`OriginateResponse`: answered or not, and the spying channel's
Uniqueid), then `ChanSpyStart` / `ChanSpyStop` by `SpyerUniqueid`, and the spying channel's
`Hangup` (ChanSpy found nothing to spy on, or the supervisor hung up first).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from ccrouter.db.write_queue import WriteQueue
from ccrouter.pbx import events as ev
from ccrouter.qc.model import SpyRefused, chanspy_data, spy_caller_id
from ccrouter.qc.store import QcStore

log = structlog.get_logger(__name__)

ACTION_PREFIX = "ccrouter-spy-"


class Ami(Protocol):
    async def send(self, action: Any, *, as_list: bool = False,
                   timeout: float | None = None) -> Any: ...  # fmt: skip


class Book(Protocol):
    def holder(self, card: str) -> Any: ...


@dataclass(slots=True)
class Session:
    id: int
    card: str
    spyee: str
    who: str = ""
    spyer: str = ""
    started: bool = False


@dataclass(frozen=True, slots=True)
class Target:
    """The live call a supervisor asks to listen to."""

    card: str
    uniqueid: str
    channel: str
    """The operator's channel (AgentConnect DestChannel)."""
    interface: str
    operator: str


class SpyService:
    def __init__(self, store: QcStore, ami: Ami, book: Book,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.store = store
        self._ami = ami
        self._book = book
        self._clock = clock
        self._operator_chan: dict[str, tuple[str, str, str]] = {}
        """Caller uniqueid -> (operator channel, interface, member name), while answered."""
        self._by_chan: dict[str, str] = {}  # operator channel -> caller uniqueid
        self._by_action: dict[str, Session] = {}
        self._by_spyer: dict[str, Session] = {}
        self._writes = WriteQueue("spy")

    # --- the live call --------------------------------------------------------------------

    def target(self, card: str) -> Target:
        """The live, answered call holding `card`, or SpyRefused saying why not."""
        call = self._book.holder(card)
        if call is None:
            raise LookupError(f"card {card} is not a call in progress")
        if not call.answered:
            raise SpyRefused(f"card {card}: the call is not answered yet")
        known = self._operator_chan.get(call.uniqueid)
        if known is None:
            raise SpyRefused(f"card {card}: the operator's channel is not known (the call was "
                             "answered before ccrouter connected to AMI)")
        channel, interface, member = known
        return Target(card, call.uniqueid, channel, interface, member)

    async def start(self, target: Target, *, who: str, role: str, mode: str, device: str,
                    caller_id: str, timeout_s: int) -> dict[str, Any]:  # fmt: skip
        """Ring `device` with ChanSpy on the operator's channel; the session's row."""
        data = chanspy_data(target.channel, mode)
        if any(s.card == target.card and s.who == who
               for s in (*self._by_action.values(), *self._by_spyer.values())):
            raise SpyRefused(f"card {target.card}: {who} is already listening in (or their "
                             "phone is ringing)")
        spy_id = await self.store.spy_requested(card=target.card, who=who, role=role, mode=mode,
                                                device=device, spyee=target.channel,
                                                at=self._clock())  # fmt: skip
        action_id = f"{ACTION_PREFIX}{spy_id}"
        session = Session(spy_id, target.card, target.channel, who)
        self._by_action[action_id] = session  # before sending: the events may come first
        action = {"Action": "Originate", "ActionID": action_id, "Channel": device,
                  "Application": "ChanSpy", "Data": data,
                  "CallerID": spy_caller_id(caller_id, mode, target.card),
                  "Timeout": str(timeout_s * 1000), "Async": "true"}  # fmt: skip
        try:
            await self._ami.send(action)
        except Exception as exc:
            self._by_action.pop(action_id, None)
            await self.store.spy_update(spy_id, state="failed", ended_at=self._clock(),
                                        reason=f"Originate not sent: {exc}")  # fmt: skip
            log.warning("spy_originate_failed", card=target.card, device=device, error=str(exc))
            raise SpyRefused(f"could not ring {device}: {exc}") from exc
        log.info("spy_requested", card=target.card, who=who, mode=mode, device=device,
                 spyee=target.channel)  # fmt: skip
        row = await self.store.spy_get(spy_id)
        assert row is not None
        return row

    # --- events ---------------------------------------------------------------------------

    def on_event(self, e: ev.DomainEvent) -> None:
        if isinstance(e, ev.AgentAnswered):
            if e.dest_channel and e.chan.uniqueid:
                self._operator_chan[e.chan.uniqueid] = (e.dest_channel, e.interface,
                                                        e.member_name)  # fmt: skip
                self._by_chan[e.dest_channel] = e.chan.uniqueid
        elif isinstance(e, ev.ChannelHungUp):
            self._hung_up(e)
        elif isinstance(e, ev.OriginateDone) and e.action_id.startswith(ACTION_PREFIX):
            self._originated(e)
        elif isinstance(e, ev.SpyStarted):
            self._spy_started(e)
        elif isinstance(e, ev.SpyStopped):
            session = self._by_spyer.get(e.spyer_uniqueid)
            if session is not None and session.started:
                self._end(session, e.at, "done", "")

    def _hung_up(self, e: ev.ChannelHungUp) -> None:
        caller = self._by_chan.pop(e.channel, None)
        if caller is not None:
            self._operator_chan.pop(caller, None)
        known = self._operator_chan.pop(e.uniqueid, None)
        if known is not None:
            self._by_chan.pop(known[0], None)
        session = self._by_spyer.pop(e.uniqueid, None)
        if session is not None:
            if session.started:
                self._end(session, e.at, "done", "")
            else:
                self._end(session, e.at, "failed", "ChanSpy found no channel to listen to "
                          f"({session.spyee} was gone: the call had ended)")

    def _originated(self, e: ev.OriginateDone) -> None:
        session = self._by_action.pop(e.action_id, None)
        if session is None:
            return
        if not e.success:
            why = {3: "did not answer", 5: "was busy", 8: "was congested", 0: "could not be "
                   "rung"}.get(e.reason, f"did not answer (reason {e.reason})")  # fmt: skip
            self._end(session, e.at, "failed", f"the supervisor's phone {why}")
            return
        session.spyer = e.uniqueid
        self._by_spyer[e.uniqueid] = session

    def _spy_started(self, e: ev.SpyStarted) -> None:
        session = self._by_spyer.get(e.spyer_uniqueid)
        if session is None:  # ChanSpyStart before the OriginateResponse: match the spyee
            session = next((s for s in self._by_action.values()
                            if s.spyee == e.spyee_channel), None)  # fmt: skip
            if session is None:
                return
            session.spyer = e.spyer_uniqueid
            self._by_spyer[e.spyer_uniqueid] = session
            self._by_action = {k: v for k, v in self._by_action.items() if v is not session}
        if session.started:
            return
        session.started = True
        log.info("spy_started", card=session.card, spyee=e.spyee_channel)
        self._submit(lambda: self.store.spy_update(session.id, state="listening",
                                                   started_at=e.at,
                                                   spyer_uniqueid=e.spyer_uniqueid))

    def _end(self, session: Session, at: float, state: str, reason: str) -> None:
        self._by_spyer.pop(session.spyer, None)
        if session.id < 0:
            return
        spy_id, session.id = session.id, -1  # ended once (ChanSpyStop, then the Hangup)
        log.info("spy_ended", card=session.card, state=state, reason=reason or None)
        self._submit(lambda: self.store.spy_update(spy_id, state=state, ended_at=at,
                                                   reason=reason))

    # --- the writer -----------------------------------------------------------------------

    def _submit(self, job: Callable[[], Awaitable[None]]) -> None:
        self._writes.submit(job)

    async def drained(self) -> None:
        """Until every event so far is in the database (tests)."""
        await self._writes.drained()

    async def run(self) -> None:
        await self.store.close_open_spies(self._clock(), "ccrouter stopped while listening")
        await self._writes.run()

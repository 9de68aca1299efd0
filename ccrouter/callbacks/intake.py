"""Callback requests coming in: the public request API and the tracker's events turned into jobs.

`request()` is the one way a request is made (the IVR offer, the out-of-hours choice, the CLI's
twin, an abandoned call): refused numbers are not stored, an open request for the number is
merged into. `on_event()` is the tracker's sync listener: it reads every value a job needs at
once (before the call book forgets the call) and only queues the job for the service's owned
task, which hands an abandon to `_abandoned` and a caller who got through to
`_caller_got_through` (their open requests are cancelled: they caught up). A base of
CallbackService.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from ccrouter import dialplan as dp
from ccrouter.callbacks import model as cb
from ccrouter.callbacks.legs import CAUGHT_UP, Abandon, Flight, Job
from ccrouter.callbacks.store import Added, CallbackStore
from ccrouter.calls.tracker import CallTracker
from ccrouter.config import Target
from ccrouter.pbx import events as ev

log = structlog.get_logger(__name__)


class Intake:
    """The callback service's requests and event intake (a base of CallbackService)."""

    policy: cb.Policy
    _store: CallbackStore
    _tracker: CallTracker
    _clock: Callable[[], float]
    _targets: dict[str, Target]
    _target_of_queue: dict[str, str]
    _free: dict[str, set[str]]
    _pending: dict[int, cb.Request]
    _flights: dict[str, Flight]
    _by_channel: dict[str, Flight]
    # defined by the service and its other bases (declared only: no stub shadows them)
    _put: Callable[[Job | Abandon], None]
    _card: Callable[[str, str, str | None], None]
    _member: Callable[[ev.MemberState], bool]
    _refresh: Callable[[int], Coroutine[Any, Any, None]]

    # --- the public request API (the IVR offer, out-of-hours choice, the CLI's twin) ---------

    async def request(
        self, number: str, *, target: str, kind: cb.Kind = cb.Kind.CALLBACK, language: str = "",
        product: str = "", card: str | None = None, place_at: float | None = None,
        due_at: float | None = None, message: str = "",
    ) -> Added | None:  # fmt: skip
        """Create (or merge into the open) request for `number`; None when the number may not
        be called (withheld, invalid, do-not-call). Committed before it returns."""
        if target not in self._targets:
            raise ValueError(f"unknown target {target!r}")
        why = cb.refusal(number, self.policy.short_abandon_s, self.policy)
        if why is not None:
            log.info("callback_refused", reason=why.value, card=card)
            return None
        t = self._targets[target]
        now = self._clock()
        added = await self._store.add(
            number=number.strip(), kind=kind, target=target, now=now,
            place_at=now if place_at is None else place_at, due_at=due_at,
            language=language or t.language, product=product or t.product, card=card,
            message=message,
        )  # fmt: skip
        await self._refresh(added.id)
        if card and card != added.card:  # merged: this call's card points at the open request
            self._card(card, "merged", f"request {added.id}")
        if added.card:
            self._card(added.card, cb.State.PENDING.value, None)
        log.info("callback_requested", request=added.id, merged=added.merged, target=target,
                 kind=kind.value, card=card)  # fmt: skip
        self._put(Job("wake"))
        return added

    # --- tracker events (sync: values are read now, work is queued) ----------------------------

    def on_event(self, e: ev.DomainEvent) -> None:
        if isinstance(e, ev.MemberAdded | ev.MemberChanged):
            if self._member(e.member):
                self._put(Job("wake"))
        elif isinstance(e, ev.MemberRemoved):
            self._free.get(e.member.queue, set()).discard(e.member.interface)
        elif isinstance(e, ev.CallerAbandoned):
            if e.chan.uniqueid in self._by_channel:
                return  # a callback leg: its Hangup ends the attempt
            call = self._tracker.book.find(uniqueid=e.chan.uniqueid)
            target = self._target_of_queue.get(e.queue)
            if target is None:
                log.info("callback_refused", reason="unknown_queue", queue=e.queue)
                return
            self._put(Abandon(e.chan.caller_num, target,
                                           call.card if call else None, e.at - e.hold_time,
                                           e.hold_time))  # fmt: skip
        elif isinstance(e, ev.AgentAnswered):
            key = e.chan.uniqueid if e.chan.uniqueid in self._by_channel else e.chan.caller_num
            kind = "connected" if e.chan.uniqueid in self._by_channel else "answered"
            self._put(Job(kind, key))
        elif isinstance(e, ev.OriginateDone) and e.action_id in self._flights:
            self._put(
                Job("originated", e.action_id, cb.result_of_originate(e.success, e.reason))
            )
        elif isinstance(e, ev.ChannelHungUp) and e.uniqueid in self._by_channel:
            self._put(Job("hungup", e.uniqueid))
        elif (isinstance(e, ev.UserEventRaised) and e.name == dp.USER_EVENT_CALLBACK
              and e.uniqueid in self._by_channel):  # fmt: skip
            self._put(Job("dialled", e.uniqueid, cb.result_of_dial(e.get("DialStatus")),
                           e.get("AnsweredTime")))  # fmt: skip

    # --- jobs from the intake ----------------------------------------------------------------

    async def _abandoned(self, a: Abandon) -> None:
        why = cb.refusal(a.number, a.hold_time, self.policy)
        if why is not None:
            log.info("callback_refused", reason=why.value, card=a.card)
            if a.card:
                self._card(a.card, "none", why.value)
            return
        await self.request(a.number, target=a.target, card=a.card, place_at=a.place_at)

    async def _caller_got_through(self, number: str) -> None:
        if not number or not any(r.number == number for r in self._pending.values()):
            return
        for r in await self._store.cancel_open(number, CAUGHT_UP, self._clock()):
            self._pending.pop(r.id, None)
            if r.card:
                self._card(r.card, cb.State.CANCELLED.value, CAUGHT_UP)
            log.info("callback_cancelled", request=r.id, reason=CAUGHT_UP, card=r.card)

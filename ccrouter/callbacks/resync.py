"""What the callback service knows, re-learnt: queue members, pending requests, open attempts.

After every AMI (re)connect `resync()` rebuilds the free members of the targets' queues from
QueueStatus and reconciles the attempts the database says are dialing with the channels
Asterisk still has: a live one is adopted, a gone one ended as `lost` (and retried). The
pending requests are reloaded from the database every poll (the CLI adds and cancels them too),
and member events keep the free set current between resyncs. A base of CallbackService.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import structlog

from ccrouter.callbacks import model as cb
from ccrouter.callbacks.config import CallbackSettings
from ccrouter.callbacks.legs import Abandon, Flight, Job, members_of
from ccrouter.callbacks.store import Attempt, CallbackStore
from ccrouter.calls.tracker import AmiSender, CallTracker
from ccrouter.pbx import events as ev

log = structlog.get_logger(__name__)


class Resync:
    """The callback service's start-up, reconnect and reload (a base of CallbackService)."""

    _s: CallbackSettings
    _store: CallbackStore
    _tracker: CallTracker
    _clock: Callable[[], float]
    _target_of_queue: dict[str, str]
    _free: dict[str, set[str]]
    _pending: dict[int, cb.Request]
    _by_channel: dict[str, Flight]
    _next_poll: float
    # defined by the service (declared only: no stub shadows them)
    _put: Callable[[Job | Abandon], None]
    _adopt: Callable[[Attempt, cb.Request], Flight]
    _finish: Callable[[Flight, cb.AttemptResult], Awaitable[None]]
    _leg_fields: Callable[[cb.Request, str], dict[str, Any]]

    async def resync(self, ami: AmiSender) -> None:
        """After every AMI (re)connect: the targets' members from QueueStatus (per queue);
        attempts left dialing are adopted when their channel still exists, else ended as
        `lost` (and retried)."""
        seen_before = self._clock()
        self._free = {}
        for queue in sorted(self._target_of_queue):  # one at a time: with thousands of
            # operators a whole-floor reply is ~100 MB of panoramisk Messages at once
            items = await ami.send({"Action": "QueueStatus", "Queue": queue}, as_list=True)
            for m in members_of(items, seen_before).values():
                self._member(m)
        chans = await ami.send({"Action": "CoreShowChannels"}, as_list=True)
        alive = {c.get("Uniqueid", "") for c in chans if c.get("Event") == "CoreShowChannel"}
        await self._reconcile(alive, seen_before)
        self._put(Job("wake"))

    async def _reconcile(self, alive: Iterable[str], seen_before: float) -> None:
        alive = set(alive)
        for attempt, request in await self._store.open_attempts():
            flight = self._by_channel.get(attempt.channel_id)
            if attempt.channel_id in alive:
                if flight is None:
                    self._adopt(attempt, request)
                    if self._tracker.book.find(uniqueid=attempt.channel_id) is None:
                        self._tracker.open_leg(  # its card may not have been committed
                            uniqueid=attempt.channel_id, card=attempt.card,
                            caller_num=request.number,
                            fields=self._leg_fields(request, attempt.target))
                    log.info("callback_attempt_adopted", request=request.id, attempt=attempt.n)
            elif attempt.started_at < seen_before:
                flight = flight or self._adopt(attempt, request)
                self._tracker.leg_failed(uniqueid=attempt.channel_id, card=attempt.card,
                                         outcome=cb.AttemptResult.LOST.value)
                await self._finish(flight, cb.AttemptResult.LOST)

    async def _reload(self) -> None:
        """Pending requests from the database (the CLI adds and cancels them too)."""
        self._next_poll = self._clock() + self._s.poll_s
        self._pending = {r.id: r for r in await self._store.pending()}

    async def _refresh(self, request_id: int) -> None:
        r = await self._store.get(request_id)
        if r is not None and r.state == cb.State.PENDING.value:
            self._pending[r.id] = r

    def _member(self, m: ev.MemberState) -> bool:
        """Track whether a member of a target's queue is free; True when it is."""
        if m.queue not in self._target_of_queue:
            return False
        free = not m.paused and m.status == 1
        if free:
            self._free.setdefault(m.queue, set()).add(m.interface)
        else:
            self._free.get(m.queue, set()).discard(m.interface)
        return free

"""The callback service: its owned task, dispatch, attempts and retries.

Requests and tracker events come in through `Intake` (`ccrouter.callbacks.intake`: a sync
listener that only turns events into jobs); what the service knows is re-learnt by `Resync`
(`ccrouter.callbacks.resync`) after every AMI (re)connect. One owned task, `run()`,
handles the jobs in order and then asks the pure policy (`ccrouter.callbacks.model.plan`) which
requests to dial. A dial is: claim the request in the database (committed), open the leg's
card, then `Originate` with `Async: true` — its reply is only "queued"; the outcome comes as
`OriginateResponse` (by ActionID) and the leg's queue events (by its ChannelId/Uniqueid).

Customer first: the customer is dialled; when they answer they hear the prompt in their
language and join the target's queue with QUEUE_PRIO ahead of live callers, where the free
operator the dispatcher counted gets them. Nobody waits on hold for a customer who does not
answer, at the price of the customer waiting a few seconds for the operator to pick up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import structlog

from ccrouter.callbacks import model as cb
from ccrouter.callbacks import operator_first
from ccrouter.callbacks.config import callback_settings
from ccrouter.callbacks.intake import Intake
from ccrouter.callbacks.legs import (
    STALE_MARGIN_S,
    Abandon,
    CardSink,
    Flight,
    Job,
    customer_first,
    leg_fields,
    policy,
)
from ccrouter.callbacks.operator_first import OperatorFirst
from ccrouter.callbacks.pbx_state import RECHECK_S, PbxLink, PbxRestart
from ccrouter.callbacks.resync import Resync
from ccrouter.callbacks.store import Attempt, CallbackStore
from ccrouter.calls.model.cards import CardWrite
from ccrouter.calls.tracker import CallTracker
from ccrouter.config import Settings
from ccrouter.pbx.ami.connection import AmiActionFailed, AmiNotConnected, AmiTimeout

log = structlog.get_logger(__name__)

class CallbackService(Intake, Resync, OperatorFirst, PbxRestart):
    def __init__(
        self,
        settings: Settings,
        store: CallbackStore,
        tracker: CallTracker,
        ami: PbxLink,
        cards: CardSink,
        new_number: Callable[[], str],
        *,
        hours: cb.Hours | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._s = callback_settings(settings)
        self.policy = policy(settings)
        self._store, self._tracker, self._ami, self._cards = store, tracker, ami, cards
        self._new_number = new_number
        self._hours = hours or cb.AlwaysOpen()
        self._clock = clock
        self._targets = {t.name: t for t in settings.targets}
        self._target_of_queue = {t.queue_name: t.name for t in settings.targets}
        self._jobs: deque[Job | Abandon] = deque()
        self._ready = asyncio.Event()  # jobs are waiting (no wait_for: it can swallow a cancel)
        self._free: dict[str, set[str]] = {}  # target queue -> free members' interfaces
        self._pending: dict[int, cb.Request] = {}
        self._flights: dict[str, Flight] = {}  # by ActionID
        self._by_channel: dict[str, Flight] = {}  # by ChannelId (the leg's Uniqueid)
        self._last: dict[str, float] = {}  # target -> last Originate time (pacing)
        self._operator_first = self._s.mode == "operator_first"
        self._cooldown: dict[str, float] = {}  # operator first: interface -> rung again after
        self._next_poll = 0.0
        self.originated = 0

    def _put(self, job: Job | Abandon) -> None:
        self._jobs.append(job)
        self._ready.set()

    def in_flight(self) -> int:
        return len(self._flights)

    def backlog(self) -> int:
        """Requests waiting (pending) — for the wallboard and alerts."""
        return len(self._pending)

    # --- the owned task --------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            await self._store.close()

    async def _run(self) -> None:
        await self._reload()
        wake_at: float | None = None
        me = asyncio.current_task()
        while True:
            if me is not None and me.cancelling():
                # Python 3.11's wait_for (inside AmiClient.send) can return a result and drop
                # a cancel that came at the same moment: honour it here, or stop() waits forever.
                raise asyncio.CancelledError
            timeout = None if wake_at is None else max(0.0, wake_at - self._clock())
            if not self._jobs:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._ready.wait()
            self._ready.clear()
            jobs, self._jobs = list(self._jobs), deque()
            for j in jobs:
                try:
                    await self._handle(j)
                except Exception:
                    log.exception("callback_job_failed", job=repr(j))
            try:
                wake_at = await self._dispatch()
            except Exception:
                log.exception("callback_dispatch_failed")
                wake_at = self._clock() + self._s.poll_s

    async def _handle(self, job: Job | Abandon) -> None:
        if isinstance(job, Abandon):
            await self._abandoned(job)
        elif job.kind == "answered":
            await self._caller_got_through(job.key)
        elif job.kind == "connected":
            flight = self._by_channel.get(job.key)
            if flight is not None:
                await self._finish(flight, cb.AttemptResult.CONNECTED)
        elif job.kind == "originated":
            flight = self._flights.get(job.key)
            if flight is None or job.result is None:
                return
            if job.result is cb.AttemptResult.ANSWERED:
                flight.answered = True
                await self._store.attempt_answered(flight.attempt.id)
            elif self._operator_first:  # the operator did not answer
                await self._operator_missed(flight)
            else:
                self._tracker.leg_failed(uniqueid=flight.attempt.channel_id,
                                         card=flight.attempt.card, outcome=job.result.value)
                await self._finish(flight, job.result)
        elif job.kind == "dialled":
            flight = self._by_channel.get(job.key)
            if flight is not None and job.result is not None:
                await self._dialled(flight, job.result, job.detail)
        elif job.kind == "hungup":
            flight = self._by_channel.get(job.key)
            if flight is not None and flight.answered:
                await self._finish(flight, cb.AttemptResult.ABANDONED)

    # --- dispatch ------------------------------------------------------------------------------

    async def _dispatch(self) -> float | None:
        now = self._clock()
        if now >= self._next_poll:
            await self._reload()
        pending = self._pending.values()
        if not self._ami.pbx_ready:  # shutting down, booting or away: nothing is dialled
            return min(self._next_poll, now + RECHECK_S)
        if not self._flights and not any(r.due_at <= now or cb.expired(r, now, self.policy)
                                         for r in pending):  # fmt: skip
            # Nothing to dial, expire or time out (the common wake: a member event, a caller
            # answered): no need to look at the floor.
            return min([self._next_poll, *(r.due_at for r in pending)])
        for r in [r for r in self._pending.values() if cb.expired(r, now, self.policy)]:
            self._pending.pop(r.id, None)
            if await self._store.end(r.id, cb.State.EXPIRED, "too_old", now) and r.card:
                self._card(r.card, cb.State.EXPIRED.value, "too_old")
        await self._drop_stale(now)
        # Operator first: the rung operators are left out of the free ones (`_lines`).
        in_flight = Counter(
            () if self._operator_first else (f.attempt.target for f in self._flights.values()))
        plan = cb.plan(list(self._pending.values()), self._lines(now), in_flight, now,
                       self.policy, self._hours)  # fmt: skip
        for d in plan.dispatch:
            await self._dial(d, now)
        wake = [self._next_poll]
        if plan.wake_at is not None:
            wake.append(plan.wake_at)
        return min(wake)

    async def _drop_stale(self, now: float) -> None:
        """A leg still ringing long after its Originate timeout lost its OriginateResponse (an
        action whose reply timed out, an AMI gap): end it as `lost` so it frees its operator."""
        ring = self._s.operator_ring_s if self._operator_first else self._s.ring_timeout_s
        limit = ring + STALE_MARGIN_S
        for flight in [f for f in self._flights.values()
                       if not f.answered and now - f.attempt.started_at > limit]:  # fmt: skip
            log.warning("callback_attempt_stale", request=flight.request.id,
                        attempt=flight.attempt.n)  # fmt: skip
            self._tracker.leg_failed(uniqueid=flight.attempt.channel_id, card=flight.attempt.card,
                                     outcome=cb.AttemptResult.LOST.value)  # fmt: skip
            await self._finish(flight, cb.AttemptResult.LOST)

    def _lines(self, now: float) -> dict[str, cb.Line]:
        busy = {f.interface for f in self._flights.values()} | {
            i for i, until in self._cooldown.items() if until > now}
        lines = {}
        for name, t in self._targets.items():
            since = self._tracker.book.waiting_since(t.queue_name)
            free = self._free.get(t.queue_name, set())
            lines[name] = cb.Line(
                queue=t.queue_name, free=frozenset(free - busy if busy else free),
                oldest_wait_s=0.0 if since is None else now - since,
                last_originate_at=self._last.get(name),
            )  # fmt: skip
        return lines

    async def _dial(self, d: cb.Dispatch, now: float) -> None:
        r = d.request
        n = r.attempts + 1
        card = self._new_number()
        action_id = f"ccrouter-cb-{r.id}-{n}" + (f"-{int(now * 1000)}" if self._operator_first
                                                 else "")  # an attempt may be released
        channel_id = f"ccrouter-cb-{r.id}-{n}-{int(now * 1000)}"
        attempt = await self._store.claim(r, card=card, action_id=action_id,
                                          channel_id=channel_id, target=d.target, now=now)
        self._pending.pop(r.id, None)
        if attempt is None:
            log.info("callback_claim_lost", request=r.id)
            return
        self._adopt(attempt, replace(r, state=cb.State.DIALING.value, attempts=n))
        self._last[d.target] = now
        t = self._targets[d.target]
        self._tracker.open_leg(uniqueid=channel_id, card=card, caller_num=r.number,
                               fields=self._leg_fields(r, d.target))  # fmt: skip
        if r.card:
            self._card(r.card, cb.State.DIALING.value, f"attempt {n}")
        if self._operator_first:
            self._by_channel[channel_id].interface = d.interface
            ring = operator_first.originate(self._s, r, interface=d.interface,
                                            action_id=action_id, channel_id=channel_id,
                                            card=card)  # fmt: skip
            await self._send(ring, r, d, card, channel_id)
            return
        action = customer_first(self._s, r, t, action_id=action_id, channel_id=channel_id,
                                card=card)
        await self._send(action, r, d, card, channel_id)

    async def _send(self, action: dict[str, Any], r: cb.Request, d: cb.Dispatch, card: str,
                    channel_id: str) -> None:  # fmt: skip
        n = r.attempts + 1
        self.originated += 1
        log.info("callback_dialing", request=r.id, attempt=n, target=d.target, card=card,
                 operator=d.interface)  # fmt: skip
        try:
            await self._ami.send(action)
        except (AmiNotConnected, AmiActionFailed) as e:
            if isinstance(e, AmiActionFailed) and self._ami.not_ready(e):
                return await self._pbx_refused(self._by_channel[channel_id])
            log.warning("callback_originate_failed", request=r.id, error=str(e))
            self._tracker.leg_failed(uniqueid=channel_id, card=card,
                                     outcome=cb.AttemptResult.FAILED.value)
            await self._finish(self._by_channel[channel_id], cb.AttemptResult.FAILED)
        except AmiTimeout:  # it may have been sent: the resync settles it
            log.warning("callback_originate_unconfirmed", request=r.id)

    def _leg_fields(self, r: cb.Request, target: str) -> dict[str, Any]:
        return leg_fields(self._s, r, self._targets[target])

    def _adopt(self, attempt: Attempt, request: cb.Request) -> Flight:
        flight = Flight(attempt, request, answered=attempt.state == "answered")
        self._flights[attempt.action_id] = flight
        self._by_channel[attempt.channel_id] = flight
        return flight

    async def _finish(self, flight: Flight, result: cb.AttemptResult) -> None:
        """An attempt ended: the request is done, retried later, or failed for good."""
        self._flights.pop(flight.attempt.action_id, None)
        self._by_channel.pop(flight.attempt.channel_id, None)
        r, n, now = flight.request, flight.attempt.n, self._clock()
        due: float | None = None
        if result is cb.AttemptResult.CONNECTED:
            state, reason = cb.State.DONE, "connected"
        else:
            due = cb.next_due(n, now, self.policy)
            state = cb.State.PENDING if due is not None else cb.State.FAILED
            reason = result.value if due is not None else "attempts_used_up"
        await self._store.finish(flight.attempt.id, result.value, now, state=state, due_at=due,
                                 reason=reason)  # fmt: skip
        if state is cb.State.PENDING and due is not None:
            self._pending[r.id] = replace(r, state=state.value, attempts=n, due_at=due)
        if r.card:
            self._card(r.card, state.value, reason)
        log.info("callback_attempt_ended", request=r.id, attempt=n, result=result.value,
                 state=state.value)  # fmt: skip

    def _card(self, number: str, status: str, reason: str | None) -> None:
        self._cards.submit(CardWrite(number, {"callback_status": status,
                                              "callback_reason": reason}))  # fmt: skip


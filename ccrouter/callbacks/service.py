"""The callback service: requests from tracker events, cancellation, dispatch, retries.

Tracker events arrive through a sync listener that only turns them into jobs (with every value
the job needs read at once, before the call book forgets the call). One owned task, `run()`,
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
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import structlog

from ccrouter import dialplan as dp
from ccrouter.callbacks import model as cb
from ccrouter.callbacks import operator_first
from ccrouter.callbacks.legs import (
    CAUGHT_UP,
    STALE_MARGIN_S,
    Abandon,
    CardSink,
    Flight,
    Job,
    customer_first,
    leg_fields,
    members_of,
    policy,
)
from ccrouter.callbacks.operator_first import OperatorFirst
from ccrouter.callbacks.pbx_state import RECHECK_S, PbxRestart, pbx_ready, refused_by_pbx
from ccrouter.callbacks.store import Added, Attempt, CallbackStore
from ccrouter.calls.model.cards import CardWrite
from ccrouter.calls.tracker import AmiSender, CallTracker
from ccrouter.config import Settings
from ccrouter.pbx import events as ev
from ccrouter.pbx.ami.connection import AmiActionFailed, AmiNotConnected, AmiTimeout

log = structlog.get_logger(__name__)

class CallbackService(OperatorFirst, PbxRestart):
    def __init__(
        self,
        settings: Settings,
        store: CallbackStore,
        tracker: CallTracker,
        ami: AmiSender,
        cards: CardSink,
        new_number: Callable[[], str],
        *,
        hours: cb.Hours | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._s = settings.callbacks
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

    def _put(self, job: Job | Abandon) -> None:
        self._jobs.append(job)
        self._ready.set()

    def in_flight(self) -> int:
        return len(self._flights)

    def backlog(self) -> int:
        """Requests waiting (pending) — for the wallboard and alerts."""
        return len(self._pending)

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

    # --- dispatch ------------------------------------------------------------------------------

    async def _dispatch(self) -> float | None:
        now = self._clock()
        if now >= self._next_poll:
            await self._reload()
        pending = self._pending.values()
        if not pbx_ready(self._ami):  # shutting down, booting or away: nothing is dialled
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
            if isinstance(e, AmiActionFailed) and refused_by_pbx(self._ami, e):
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

    # --- start-up, reconnects, other processes ----------------------------------------------

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

    def _card(self, number: str, status: str, reason: str | None) -> None:
        self._cards.submit(CardWrite(number, {"callback_status": status,
                                              "callback_reason": reason}))  # fmt: skip


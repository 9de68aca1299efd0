"""Callbacks across an Asterisk restart (issue 11 item 3).

Callers queued when Asterisk restarts are hung up by it (`core restart now` hangs up every
channel, then announces `Shutdown`): they become abandoned calls with callback requests. They
were cut off by the centre, not by choice, so the request stays, but nothing is dialled while
the PBX shuts down or boots (`AmiClient.pbx_ready` is False from the first sign of a shutdown —
the `Shutdown` event or an action refused with `Asterisk is shutting down` — until a resync
after `FullyBooted` succeeded). An Originate Asterisk refuses because it is shutting down or
still booting does not count as an attempt: it is released, and the request (and its card)
says why: reason `pbx_restart`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

import structlog

from ccrouter.callbacks import model as cb
from ccrouter.callbacks.legs import Flight
from ccrouter.callbacks.store import CallbackStore
from ccrouter.calls.tracker import AmiSender, CallTracker
from ccrouter.pbx.ami.connection import AmiActionFailed

log = structlog.get_logger(__name__)

PBX_RESTART = cb.AttemptResult.PBX_RESTART.value
RECHECK_S = 0.2
"""While the PBX is not ready, the dispatcher looks again this often (it dials at once then)."""


class PbxLink(AmiSender, Protocol):
    """What the callback service needs of the AMI client (`ccrouter.pbx.ami.AmiClient`)."""

    pbx_ready: bool
    """Resynced with a PBX that is up (not booting, not shutting down): dialling may go on."""

    def not_ready(self, e: AmiActionFailed) -> bool:
        """Whether Asterisk refused `e` because it is shutting down or still booting."""
        ...


class PbxRestart:
    """The callback service's handling of an Originate refused by a restarting PBX (a base of
    CallbackService)."""

    _flights: dict[str, Flight]
    _by_channel: dict[str, Flight]
    _pending: dict[int, cb.Request]
    _clock: Callable[[], float]
    _tracker: CallTracker
    _store: CallbackStore

    def _card(self, number: str, status: str, reason: str | None) -> None:
        raise NotImplementedError

    async def _pbx_refused(self, flight: Flight) -> None:
        """The attempt does not count: released, the request pending again (dialled once the
        PBX is fully booted), its card and its leg's card saying `pbx_restart`."""
        self._flights.pop(flight.attempt.action_id, None)
        self._by_channel.pop(flight.attempt.channel_id, None)
        now, r = self._clock(), flight.request
        self._tracker.leg_failed(uniqueid=flight.attempt.channel_id, card=flight.attempt.card,
                                 outcome=PBX_RESTART)  # fmt: skip
        await self._store.release(flight.attempt.id, now, due_at=now, reason=PBX_RESTART)
        self._pending[r.id] = replace(r, state=cb.State.PENDING.value, due_at=now,
                                      attempts=flight.attempt.n - 1, reason=PBX_RESTART)
        if r.card:
            self._card(r.card, cb.State.PENDING.value, PBX_RESTART)
        log.info("callback_released_pbx_not_ready", request=r.id, attempt=flight.attempt.n)

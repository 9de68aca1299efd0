"""Operator-first callbacks (`callbacks.mode: operator_first`): the Originate and its outcome.

The free operator the dispatcher counted is rung (Originate, Async, Channel = their queue
member interface, Context `ccrouter-callback-operator`); once they answer they hear the whisper
("a callback for the wallet line, in Russian"), then the dialplan's Dial() rings the customer.
The outcome arrives as `UserEvent: CcrouterCallback` from the context's `h` extension with
Dial()'s DIALSTATUS and ANSWEREDTIME; the Originate's own result (OriginateResponse) only says
whether the operator answered.

Trade-off against customer first: the customer gets a person the moment they pick up, and the
operator knows the call before it starts; the price is operator time spent listening to the
customer's phone ring (and on busy or absent customers), and an operator who steps away
without pausing is rung (they are then left alone for `operator_cooldown_s`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import structlog

from ccrouter import dialplan as dp
from ccrouter.callbacks import model as cb
from ccrouter.callbacks.config import CallbackSettings
from ccrouter.callbacks.legs import CardSink, Flight
from ccrouter.callbacks.store import CallbackStore
from ccrouter.calls.model.cards import CardWrite
from ccrouter.calls.tracker import CallTracker

log = structlog.get_logger(__name__)


def originate(
    s: CallbackSettings, r: cb.Request, *, interface: str, action_id: str, channel_id: str,
    card: str,
) -> dict[str, Any]:  # fmt: skip
    """The AMI Originate that rings `interface` and then dials the customer of `r`."""
    variables = {
        dp.VAR_CARD: card, dp.VAR_CALLBACK_OF: r.card or "", dp.VAR_LANGUAGE: r.language,
        dp.VAR_PRODUCT: r.product, dp.VAR_WHISPER: s.whisper,
        dp.VAR_DIAL: s.dial.replace("{number}", r.number),
        dp.VAR_DIAL_TIMEOUT: str(s.ring_timeout_s),
    }  # fmt: skip
    action: dict[str, Any] = {
        "Action": "Originate", "ActionID": action_id, "ChannelId": channel_id,
        "Channel": interface, "Context": dp.CONTEXT_CALLBACK_OPERATOR, "Exten": "s",
        "Priority": "1", "Timeout": str(s.operator_ring_s * 1000), "Async": "true",
        "Variable": [f"{k}={v}" for k, v in variables.items()],
    }  # fmt: skip
    if s.caller_id:
        action["CallerID"] = s.caller_id
    return action


def talk_seconds(answered_time: str) -> int | None:
    """ANSWEREDTIME (whole seconds; empty when nobody answered)."""
    try:
        return int(float(answered_time))
    except ValueError:
        return None


class OperatorFirst:
    """The callback service's operator-first outcomes (a base of CallbackService)."""

    _s: CallbackSettings
    _flights: dict[str, Flight]
    _by_channel: dict[str, Flight]
    _cooldown: dict[str, float]
    _pending: dict[int, cb.Request]
    _clock: Callable[[], float]
    _tracker: CallTracker
    _store: CallbackStore
    _cards: CardSink

    async def _finish(self, flight: Flight, result: cb.AttemptResult) -> None:
        raise NotImplementedError

    def _card(self, number: str, status: str, reason: str | None) -> None:
        raise NotImplementedError

    async def _operator_missed(self, flight: Flight) -> None:
        """Operator first: the operator did not answer (or hung up before the customer was
        dialled). The attempt does not count; they are left alone for a while."""
        self._flights.pop(flight.attempt.action_id, None)
        self._by_channel.pop(flight.attempt.channel_id, None)
        now, r = self._clock(), flight.request
        self._cooldown[flight.interface] = now + self._s.operator_cooldown_s
        self._tracker.leg_failed(uniqueid=flight.attempt.channel_id, card=flight.attempt.card,
                                 outcome=cb.AttemptResult.OPERATOR_MISSED.value)  # fmt: skip
        await self._store.release(flight.attempt.id, now, due_at=now)
        self._pending[r.id] = replace(r, state=cb.State.PENDING.value, due_at=now)
        if r.card:
            self._card(r.card, cb.State.PENDING.value, cb.AttemptResult.OPERATOR_MISSED.value)
        log.info("callback_operator_missed", request=r.id, operator=flight.interface)

    async def _dialled(self, flight: Flight, result: cb.AttemptResult, answered: str) -> None:
        """Operator first: the customer leg's outcome (UserEvent from the dialplan)."""
        if result is cb.AttemptResult.OPERATOR_MISSED:
            await self._operator_missed(flight)
            return
        card = flight.attempt.card
        if result is cb.AttemptResult.CONNECTED:
            talk = talk_seconds(answered)
            self._cards.submit(CardWrite(card, {
                "interface": flight.interface, "talk_s": talk,
                "answered_at": self._clock() - (talk or 0)}))  # fmt: skip
        outcome = "answered" if result is cb.AttemptResult.CONNECTED else result.value
        self._tracker.leg_failed(uniqueid=flight.attempt.channel_id, card=card, outcome=outcome)
        await self._finish(flight, result)

"""The `callback_offer` AGI script: a queued caller pressed the offer key.

The queue's periodic announcement offers "press 1 to be called back"; the key makes app_queue
leave the queue for `ccrouter-callback-offer` (queues.conf `context`), which runs this script.
It requests a callback for the caller's number on the call's target, keeping the caller's place
(ordered by the time they first joined the queue), plays the confirmation and sets
CCROUTER_STATUS=ok; the dialplan then hangs up. When no callback can be made (withheld number,
feature off, database trouble) it sets nothing and the dialplan puts the caller back in the
queue.

The same script is a target's overflow step (`overflow: {callback: true}`): the dialplan's
`ccrouter-callback-overflow` runs it with CCROUTER_OVERFLOW_CALLBACK = the target; it then asks
first (the offer prompt, one digit) and requests the callback only for the offer key; the
escalation (the queues passed, then `callback`) goes on the card.
"""

from __future__ import annotations

from typing import Any, Protocol

import structlog

from ccrouter.calls.model.book import CallBook
from ccrouter.calls.model.cards import CardWrite
from ccrouter.dialplan import (
    STATUS_OK,
    VAR_LANGUAGE,
    VAR_OVERFLOW_CALLBACK,
    VAR_PRODUCT,
    VAR_STATUS,
)
from ccrouter.pbx.agi.session import AgiCommandError, AgiSession

log = structlog.get_logger(__name__)


class CardSink(Protocol):
    def submit(self, write: CardWrite) -> None: ...


OFFER_TIMEOUT_MS = 6000
"""Overflow offer: how long the caller has to press the key after the prompt."""


class CallbackRequests(Protocol):
    async def request(
        self, number: str, *, target: str, language: str = "", product: str = "",
        card: str | None = None, place_at: float | None = None,
    ) -> Any: ...  # fmt: skip


async def callback_offer(
    session: AgiSession,
    callbacks: CallbackRequests,
    book: CallBook,
    target_of_queue: dict[str, str],
    confirm_prompt: str,
    offer_prompt: str = "",
    offer_key: str = "1",
    cards: CardSink | None = None,
) -> None:
    request = session.request
    call = book.find(uniqueid=request.uniqueid)
    overflow = await session.get_variable(VAR_OVERFLOW_CALLBACK) or ""
    if overflow:  # a target's overflow step: ask first
        if call is None or overflow not in target_of_queue.values():
            log.warning("callback_offer_unknown_call", uniqueid=request.uniqueid,
                        target=overflow)  # fmt: skip
            return
        if cards is not None:  # the queues passed (none: JOINEMPTY, or never queued)
            passed = call.queues or [overflow]
            cards.submit(CardWrite(call.card, {"escalation": "->".join([*passed, "callback"])}))
        pressed = await session.get_data(offer_prompt, OFFER_TIMEOUT_MS, 1)
        if pressed != offer_key:
            log.info("callback_offer_declined", card=call.card, pressed=pressed)
            return
        target = overflow
    elif call is None or call.queue not in target_of_queue:
        log.warning("callback_offer_unknown_call", uniqueid=request.uniqueid)
        return
    else:
        target = target_of_queue[call.queue]
    language = await session.get_variable(VAR_LANGUAGE) or ""
    product = await session.get_variable(VAR_PRODUCT) or ""
    added = await callbacks.request(
        request.caller_num, target=target, language=language,
        product=product, card=call.card, place_at=call.joined_at or call.started_at,
    )  # fmt: skip
    if added is None:
        log.info("callback_offer_refused", card=call.card)
        return
    try:
        await session.stream_file(confirm_prompt)
    except AgiCommandError as e:  # a missing sound must not undo the request
        log.warning("callback_offer_prompt_failed", prompt=confirm_prompt, error=str(e))
    await session.set_variable(VAR_STATUS, STATUS_OK)
    log.info("callback_offer_taken", card=call.card, request=getattr(added, "id", None))


class IvrCallbackEnd:
    """The IVR's `callback` end (`then: callback`, a menu's `callback` option): request a
    callback on the caller's line and say so (`callbacks.offer.confirm_prompt`, in their
    language). It is `daemon.ivr_ends["callback"]` (`ccrouter.ivr.service.EndAction`)."""

    def __init__(self, callbacks: CallbackRequests, confirm_prompt: str) -> None:
        self._callbacks, self._confirm_prompt = callbacks, confirm_prompt

    async def __call__(self, session: AgiSession, number: str, *, target: str, language: str,
                       product: str, card: str) -> bool:  # fmt: skip
        try:
            added = await self._callbacks.request(number, target=target, language=language,
                                                  product=product, card=card)  # fmt: skip
        except Exception as exc:
            log.warning("ivr_callback_failed", error=repr(exc))
            return False
        if added is None:
            return False
        prompt = self._confirm_prompt
        try:  # a missing sound does not undo the request
            await session.stream_file(prompt)
        except AgiCommandError as e:
            log.warning("ivr_callback_prompt_failed", prompt=prompt, error=str(e))
        return True

"""A target whose overflow step is a callback offer (`overflow: {callback: true}`), end to end:
after the queue timeout, or at once when nobody with the skills is logged in, the caller is
asked (the offer prompt, one key) and a callback request is made; the escalation is on the card."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from ccrouter.callbacks.feature import install
from ccrouter.config import Settings
from ccrouter.config.sections import overflow_model
from ccrouter.sim import SimCaller
from tests.stack import stack, wait_until
from tests.test_callback_e2e import NUMBER, WALLET_DID, add_paused_operator, cb_settings, requests


def offering(timeout_s: int = 4) -> Settings:
    s = cb_settings()
    step = overflow_model()(callback=True)  # the callbacks feature's overflow step
    targets = [t.model_copy(update={"overflow": step, "timeout_s": timeout_s})
               if t.name == "wallet-ru" else t for t in s.targets]  # fmt: skip
    return s.model_copy(update={"targets": targets})


async def test_queue_timeout_offers_a_callback_and_the_key_takes_it(tmp_path: Path) -> None:
    async with stack(tmp_path, settings=offering(), features=[install]) as st:
        add_paused_operator(st, "wallet-ru", "PJSIP/1001", "Dilnoza")  # logged in, on a break
        call = st.sim.place_call(SimCaller(NUMBER, "Ivan", dialled=WALLET_DID, patience_s=60,
                                           dtmf=("1",)))  # fmt: skip
        await asyncio.wait_for(call.finished, 10)
        await wait_until(lambda: len(st.app.tracker.book) == 0, what="card closed")
        card_no = call.variables["CCROUTER_CARD"]
        (req,) = await requests(st)
        card = await st.card(card_no)
    assert call.variables["QUEUESTATUS"] == "TIMEOUT"
    assert call.variables["CCROUTER_STATUS"] == "ok"
    assert (req.number, req.target, req.card, req.state, req.language, req.product) == (
        NUMBER, "wallet-ru", card_no, "pending", "ru", "wallet")
    assert card["escalation"] == "wallet-ru->callback"
    assert card["callback_status"] == "pending"
    assert "Playback(ss-noservice)" not in call.agi_commands


async def test_empty_queue_offers_at_once_and_silence_declines(tmp_path: Path) -> None:
    async with stack(tmp_path, settings=offering(), features=[install]) as st:
        queue = st.sim._core.queues["wallet-ru"]  # as generated: joinempty = unavailable,...
        queue.config = replace(queue.config, joinempty=False)
        call = st.sim.place_call(SimCaller(NUMBER, "Ivan", dialled=WALLET_DID, patience_s=60))
        await asyncio.wait_for(call.finished, 10)
        await wait_until(lambda: len(st.app.tracker.book) == 0, what="card closed")
        card = await st.card(call.variables["CCROUTER_CARD"])
        assert await requests(st) == []  # no key pressed: no callback
    assert call.variables["QUEUESTATUS"] == "JOINEMPTY"  # nobody logged in
    assert call.variables["CCROUTER_OVERFLOW_CALLBACK"] == "wallet-ru"
    assert card["escalation"] == "wallet-ru->callback"
    assert "Playback(ss-noservice)" in call.agi_commands

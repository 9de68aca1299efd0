"""The IVR's callback endings with the callback feature installed, over real sockets: the menu's
`callback` option and out-of-hours `then: callback` create a request with the caller's
language, product and card; the caller hears the confirmation; the card says so."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ccrouter.callbacks.feature import install as callbacks
from ccrouter.config.ivr import HoursSettings
from ccrouter.dialplan import SCRIPT_IVR, STATUS_HANGUP, VAR_CARD, VAR_STATUS
from ccrouter.ivr.feature import install as ivr
from ccrouter.sim import SimCaller
from tests.stack import stack, wait_until
from tests.test_callback_e2e import cb_settings, requests

CONFIRM = 'STREAM FILE ccrouter-callback-confirmed ""'


async def test_menu_callback_option_requests_a_callback(tmp_path: Path) -> None:
    s = cb_settings()
    async with stack(tmp_path, settings=s.model_copy(update={"hours": {}}),
                     features=[ivr, callbacks], inbound_script=SCRIPT_IVR) as st:  # fmt: skip
        # Russian (1), "other" menu (5), "call me back" (2)
        call = st.sim.place_call(SimCaller("79001112240", dialled="2000", dtmf=["1", "5", "2"]))
        assert await asyncio.wait_for(call.finished, 10) == "ivr_only"
        await wait_until(lambda: len(st.app.tracker.book) == 0, what="card closed")
        (req,) = await requests(st)
        (card,) = await st.cards()
    number = call.variables[VAR_CARD]
    default = s.routing.default_product
    assert (req.number, req.card, req.language, req.product, req.state) == (
        "79001112240", number, "ru", default, "pending")
    assert s.target(req.target).product == default
    assert call.agi_commands[-2:] == [CONFIRM, f"SET VARIABLE {VAR_STATUS} {STATUS_HANGUP}"]
    assert card["callback_status"] == "pending" and card["outcome"] == "ivr_only"
    assert card["ivr_path"][-3:] == ["menu:other", "key:2", "callback"]
    assert st.sim.originated == []  # nobody free: nothing dialled yet


async def test_out_of_hours_then_callback_requests_one_for_the_closed_line(
    tmp_path: Path,
) -> None:
    s = cb_settings()
    closed = {"terminal": HoursSettings(timezone="Asia/Tashkent", weekly={})}
    async with stack(tmp_path, settings=s.model_copy(update={"hours": closed}),
                     features=[ivr, callbacks], inbound_script=SCRIPT_IVR) as st:  # fmt: skip
        call = st.sim.place_call(SimCaller("79001112241", dialled="712000200", dtmf=["2"]))
        assert await asyncio.wait_for(call.finished, 10) == "ivr_only"
        await wait_until(lambda: len(st.app.tracker.book) == 0, what="card closed")
        (req,) = await requests(st)
        (card,) = await st.cards()
    number = call.variables[VAR_CARD]
    assert (req.number, req.card, req.target, req.language, req.product) == (
        "79001112241", number, "terminal-uz", "uz", "terminal")
    # the closed message in Uzbek, then the confirmation; no voicemail
    assert call.agi_commands[-3:] == ['STREAM FILE ccrouter/closed ""', CONFIRM,
                                      f"SET VARIABLE {VAR_STATUS} {STATUS_HANGUP}"]
    assert not any(c.startswith("VoiceMail") for c in call.agi_commands)
    assert card["outcome"] == "out_of_hours" and card["callback_status"] == "pending"
    assert card["language"] == "uz" and card["product"] == "terminal"

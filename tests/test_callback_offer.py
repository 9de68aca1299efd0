"""The in-queue callback offer: generated config, and the callback_offer AGI script over a socket
against ccrouter with a caller really waiting in the simulator's queue."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ccrouter import dialplan as dp
from ccrouter.asterisk_conf import extensions_conf, queues_conf
from ccrouter.callbacks.feature import install
from ccrouter.config import Settings
from ccrouter.sim import SimCaller, SimOperator
from tests.stack import stack, wait_until
from tests.test_agi_session import Peer
from tests.test_callback_e2e import WALLET_DID, cb_settings, requests, service

OK = b"200 result=1\n"


def offer_settings() -> Settings:
    s = cb_settings()
    offer = s.callbacks.offer.model_copy(update={"enabled": True, "after_s": 90, "every_s": 45})
    return s.model_copy(update={"callbacks": s.callbacks.model_copy(update={"offer": offer})})


def test_generated_queues_and_offer_context() -> None:
    s = offer_settings()
    s = s.model_copy(update={"agi": s.agi.model_copy(update={"port": 4573})})
    queues = queues_conf(s)
    section = queues.split("[wallet-ru]")[1].split("\n[")[0]
    for line in (f"context = {dp.CONTEXT_CALLBACK_OFFER}", "periodic-announce = "
                 "ccrouter-callback-offer", "periodic-announce-startdelay = 90",
                 "periodic-announce-frequency = 45"):  # fmt: skip
        assert line in section
    ext = extensions_conf(s)
    assert f"[{dp.CONTEXT_CALLBACK_OFFER}]\nexten => 1,1," in ext
    assert f"AGI(agi://127.0.0.1:4573/{dp.SCRIPT_CALLBACK_OFFER})" in ext
    no_offer = s.callbacks.offer.model_copy(update={"enabled": False})
    off = s.model_copy(update={"callbacks": s.callbacks.model_copy(update={"offer": no_offer})})
    assert "periodic-announce" not in queues_conf(off)
    assert dp.CONTEXT_CALLBACK_OFFER not in extensions_conf(off)


def header(uniqueid: str, number: str) -> bytes:
    env = {"agi_network": "yes", "agi_network_script": dp.SCRIPT_CALLBACK_OFFER,
           "agi_request": f"agi://127.0.0.1/{dp.SCRIPT_CALLBACK_OFFER}",
           "agi_channel": "PJSIP/trunk-00000000", "agi_language": "en", "agi_type": "PJSIP",
           "agi_uniqueid": uniqueid, "agi_version": "22.10.1", "agi_callerid": number,
           "agi_calleridname": "Ivan", "agi_context": dp.CONTEXT_CALLBACK_OFFER,
           "agi_extension": "1", "agi_priority": "3", "agi_enhanced": "0.0"}  # fmt: skip
    return "".join(f"{k}: {v}\n" for k, v in env.items()).encode() + b"\n"


async def test_pressing_the_offer_key_requests_a_callback_keeping_the_place(
    tmp_path: Path,
) -> None:
    async with stack(tmp_path, settings=offer_settings(), features=[install]) as st:
        st.sim.add_operator(SimOperator("PJSIP/1001"))
        st.sim.add_member("wallet-ru", "PJSIP/1001", name="Dilnoza", paused=True)
        call = st.sim.place_call(SimCaller("79001110000", "Ivan", dialled=WALLET_DID))
        book = st.app.tracker.book

        def joined() -> bool:  # QueueCallerJoin seen (the route sets the queue before it)
            found = book.find(uniqueid=call.uniqueid)
            return found is not None and found.queue == "wallet-ru" and found.joined_at is not None

        await wait_until(joined, what="queued")
        live = book.find(uniqueid=call.uniqueid)
        assert live is not None and live.joined_at is not None
        await asyncio.sleep(0.1)
        peer = await Peer.connect(st.app.agi_address[1], header(call.uniqueid, "79001110000"))
        await peer.answer_all({f"GET VARIABLE {dp.VAR_LANGUAGE}": b"200 result=1 (ru)\n",
                               f"GET VARIABLE {dp.VAR_PRODUCT}": b"200 result=1 (wallet)\n",
                               "STREAM FILE ccrouter-callback-confirmed \"\"":
                               b"200 result=0 endpos=8000\n"}, default=OK)  # fmt: skip
        (req,) = await requests(st)
        assert service(st).backlog() == 1
        card = await st.card(live.card)
    assert peer.commands[-1] == f"SET VARIABLE {dp.VAR_STATUS} {dp.STATUS_OK}"
    assert (req.number, req.target, req.language, req.product, req.card) == (
        "79001110000", "wallet-ru", "ru", "wallet", live.card)
    assert req.place_at == live.joined_at  # ordered by when they joined, not when they pressed
    assert card["callback_status"] == "pending"


async def test_withheld_caller_pressing_the_key_goes_back_to_the_queue(tmp_path: Path) -> None:
    async with stack(tmp_path, settings=offer_settings(), features=[install]) as st:
        st.sim.add_member("wallet-ru", "PJSIP/1001", name="Dilnoza", paused=True)
        call = st.sim.place_call(SimCaller("anonymous", dialled=WALLET_DID))
        book = st.app.tracker.book
        await wait_until(lambda: any(c.queue == "wallet-ru" for c in book.views()), what="queued")
        peer = await Peer.connect(st.app.agi_address[1], header(call.uniqueid, "anonymous"))
        await peer.answer_all({}, default=b"200 result=1 ()\n")
        assert await requests(st) == []
    assert f"SET VARIABLE {dp.VAR_STATUS} {dp.STATUS_OK}" not in peer.commands

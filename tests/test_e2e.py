"""End to end over real TCP: the PBX simulator (AMI server + FastAGI client) and ccrouter."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ccrouter.app import App
from ccrouter.calls.model.cards import is_valid_card_number
from ccrouter.dialplan import STATUS_OK, VAR_CARD, VAR_QUEUE, VAR_STATUS
from ccrouter.sim import SimCaller
from tests.stack import add_operator, stack, wait_until

WALLET_DID = "712000100"
TERMINAL_DID = "712000200"


async def test_answered_call_routes_by_did_and_leaves_exactly_one_correct_card(
    tmp_path: Path,
) -> None:
    async with stack(tmp_path) as st:
        add_operator(st.sim, "wallet-ru", "PJSIP/1001", "Dilnoza", answer_after_s=1, talk_time_s=3)
        call = st.sim.place_call(SimCaller("79001234567", "Ivan", dialled=WALLET_DID))
        assert await asyncio.wait_for(call.finished, 10) == "answered"
        assert call.variables[VAR_STATUS] == STATUS_OK
        assert call.variables[VAR_QUEUE] == "wallet-ru"
        number = call.variables[VAR_CARD]
        assert is_valid_card_number(number)
        await wait_until(lambda: len(st.app.tracker.book) == 0, what="card closed")
        (card,) = await st.cards()
    assert card["number"] == number
    assert {k: card[k] for k in ("state", "outcome", "close_reason", "queue", "target", "product",
                                 "language", "operator", "interface", "caller_num", "caller_name",
                                 "dialled", "uniqueid", "linkedid", "end_reason", "kind")} == {
        "state": "closed", "outcome": "answered", "close_reason": "normal", "queue": "wallet-ru",
        "target": "wallet-ru", "product": "wallet", "language": "ru", "operator": "Dilnoza",
        "interface": "PJSIP/1001", "caller_num": "79001234567", "caller_name": "Ivan",
        "dialled": WALLET_DID, "uniqueid": call.uniqueid, "linkedid": call.linkedid,
        "end_reason": "agent", "kind": "inbound",
    }  # fmt: skip
    assert card["talk_s"] == 3 and card["ring_s"] == 1 and card["wait_s"] in (1, 2)
    assert card["started_at"] <= card["answered_at"] <= card["ended_at"]


async def test_abandoned_and_short_abandoned_calls(tmp_path: Path) -> None:
    async with stack(tmp_path) as st:
        long_wait = st.sim.place_call(SimCaller("79001110000", dialled=TERMINAL_DID, patience_s=8))
        short = st.sim.place_call(SimCaller("79002220000", dialled=TERMINAL_DID, patience_s=2))
        outcomes = await asyncio.wait_for(asyncio.gather(long_wait.finished, short.finished), 10)
        assert outcomes == ["abandoned", "abandoned"]
        await wait_until(lambda: len(st.app.tracker.book) == 0, what="cards closed")
        cards = {c["caller_num"]: c for c in await st.cards()}
    assert len(cards) == 2
    assert cards["79001110000"]["outcome"] == "abandoned"
    assert cards["79001110000"]["wait_s"] == 8
    assert cards["79002220000"]["outcome"] == "short_abandon"
    assert all(c["state"] == "closed" and c["queue"] == "terminal-ru" for c in cards.values())
    assert all(c["operator"] is None for c in cards.values())


async def test_ami_dropped_mid_call_reconnects_resyncs_and_loses_no_card(tmp_path: Path) -> None:
    async with stack(tmp_path) as st:
        add_operator(st.sim, "wallet-ru", "PJSIP/1001", "Dilnoza", answer_after_s=1,
                     talk_time_s=30)  # fmt: skip
        call = st.sim.place_call(SimCaller("79001234567", dialled=WALLET_DID))
        book = st.app.tracker.book
        await wait_until(lambda: any(v.answered for v in book.views()), what="answered")
        connects = st.app.ami.connects
        await st.sim.drop_ami()
        await wait_until(lambda: st.app.ami.connects > connects, what="reconnected")
        assert await asyncio.wait_for(call.finished, 10) == "answered"
        await wait_until(lambda: len(book) == 0, what="card closed")
        (card,) = await st.cards()
    assert card["outcome"] == "answered" and card["close_reason"] == "normal"
    assert card["talk_s"] == 30 and card["end_reason"] == "agent"


async def test_call_that_ended_during_a_half_open_gap_is_reconciled(tmp_path: Path) -> None:
    async with stack(tmp_path) as st:
        add_operator(st.sim, "wallet-ru", "PJSIP/1001", "Dilnoza", answer_after_s=1,
                     talk_time_s=4)  # fmt: skip
        call = st.sim.place_call(SimCaller("79001234567", dialled=WALLET_DID))
        book = st.app.tracker.book
        await wait_until(lambda: any(v.answered for v in book.views()), what="answered")
        st.sim.set_half_open(True)  # nothing more reaches ccrouter: no AgentComplete, no Hangup
        assert await asyncio.wait_for(call.finished, 10) == "answered"
        await wait_until(lambda: not st.app.ami.connected, what="watchdog noticed")
        st.sim.set_half_open(False)
        await wait_until(lambda: len(book) == 0, what="card reconciled")
        (card,) = await st.cards()
    assert card["state"] == "closed" and card["close_reason"] == "reconciled"
    assert card["outcome"] == "answered" and card["operator"] == "Dilnoza"


async def test_asterisk_restart_closes_vanished_calls_as_lost(tmp_path: Path) -> None:
    async with stack(tmp_path) as st:
        waiting = st.sim.place_call(SimCaller("79001234567", dialled=TERMINAL_DID,
                                              patience_s=600))  # fmt: skip
        book = st.app.tracker.book
        await wait_until(lambda: any(v.queue == "terminal-ru" and v.linkedid
                                     for v in book.views()), what="in queue")  # fmt: skip
        await st.sim.restart()
        assert await asyncio.wait_for(waiting.finished, 5) == "lost"
        await wait_until(lambda: len(book) == 0, what="card closed")
        (card,) = await st.cards()
    assert card["close_reason"] == "lost_on_pbx_restart" and card["outcome"] == "lost"


async def test_cards_left_open_by_a_crash_are_reconciled_at_start_up(tmp_path: Path) -> None:
    async with stack(tmp_path) as st:
        call = st.sim.place_call(SimCaller("79001234567", dialled=TERMINAL_DID, patience_s=600))
        book = st.app.tracker.book
        await wait_until(lambda: any(v.linkedid for v in book.views()), what="in queue")
        await st.app.writer.flush()
        # ccrouter goes away without seeing the end of the call ...
        st.sim.set_half_open(True)
        await st.app.stop()
        await st.sim.restart()  # ... and the call is gone when it comes back
        st.sim.set_half_open(False)
        await asyncio.wait_for(call.finished, 5)
        app = App(st.settings, features=[])
        await app.start()
        try:
            assert len(app.tracker.book) == 1  # restored from the open card
            await wait_until(lambda: len(app.tracker.book) == 0, what="reconciled")
            await app.writer.flush()
            cards = [await app.store.get(call.variables[VAR_CARD])]
        finally:
            await app.stop()
        st.app = app  # the stack's teardown stops this one (stop twice is harmless)
    (card,) = cards
    assert card is not None
    assert card["state"] == "closed" and card["outcome"] == "lost"
    assert card["close_reason"] in ("reconciled", "lost_on_pbx_restart")


async def test_caller_who_joined_while_ami_was_down_gets_a_card_at_resync(tmp_path: Path) -> None:
    """A call that skipped our route script (AGI unreachable -> the dialplan's fallback queue)
    and joined while ccrouter heard nothing is only known from QueueStatus at resync."""
    async with stack(tmp_path, fallback_queue="general-line") as st:
        st.sim.set_half_open(True)
        await wait_until(lambda: not st.app.ami.connected, what="watchdog noticed")
        st.sim.agi_port = closed_port()
        call = st.sim.place_call(SimCaller("79005550000", dialled=TERMINAL_DID, patience_s=600))
        await wait_until(lambda: call.queue == "general-line", what="caller in the fallback queue")
        assert call.agi_status == "FAILURE" and await st.cards() == []
        st.sim.set_half_open(False)
        book = st.app.tracker.book
        await wait_until(lambda: len(book) == 1, what="resynced")
        (card,) = await st.cards()
    assert card["queue"] == "general-line" and card["uniqueid"] == call.uniqueid
    assert card["caller_num"] == "79005550000"


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

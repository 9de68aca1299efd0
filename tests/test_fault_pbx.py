"""Asterisk-side faults under load (single-call cases are in test_e2e.py): a restart with the AMI
port down for a while, and a flapping AMI connection (drops and half-open gaps, repeatedly).

Invariants: every call that went through the route script has exactly one card, with the number
its channel was given, and every card ends closed; calls the restart killed are closed as
`lost_on_pbx_restart`; calls placed after the restart (new uniqueid epoch) are complete.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

from ccrouter.dialplan import VAR_CARD
from ccrouter.sim import SimCall, SimCaller
from tests.stack import Stack, add_operator, stack, wait_until

WALLET_DID = "712000100"
TERMINAL_DID = "712000200"
GENERAL_DID = "712000300"


def staff(st: Stack, n: int, talk_time_s: float) -> None:
    for i in range(n):
        add_operator(st.sim, ("wallet-ru", "terminal-ru")[i % 2], f"PJSIP/{1001 + i}",
                     f"Operator {i}", answer_after_s=1, talk_time_s=talk_time_s)  # fmt: skip


def caller(i: int, patience_s: float = 600) -> SimCaller:
    return SimCaller(f"7902{i:07d}", dialled=(WALLET_DID, TERMINAL_DID)[i % 2],
                     patience_s=patience_s)  # fmt: skip


async def closed_cards(st: Stack, calls: list[SimCall]) -> dict[str, dict[str, Any]]:
    """{uniqueid: card} once every routed call's card is closed; asserts one card per call."""
    await wait_until(lambda: len(st.app.tracker.book) == 0, 10, "every card closed")
    rows = await st.cards()
    per_call = Counter(r["uniqueid"] for r in rows)
    assert all(n == 1 for n in per_call.values()), f"duplicate cards: {per_call.most_common(3)}"
    by_uid = {r["uniqueid"]: r for r in rows}
    routed = [c for c in calls if c.variables.get(VAR_CARD)]
    assert {c.uniqueid for c in routed} == set(by_uid)
    for call in routed:
        card = by_uid[call.uniqueid]
        assert card["number"] == call.variables[VAR_CARD]
        assert card["state"] == "closed"
    return by_uid


async def test_restart_under_load_with_the_ami_port_down(tmp_path: Path) -> None:
    async with stack(tmp_path) as st:
        staff(st, 3, talk_time_s=600)  # three long conversations survive until the restart
        before = [st.sim.place_call(caller(i)) for i in range(8)]  # 3 talking, 5 waiting
        book = st.app.tracker.book
        await wait_until(lambda: sum(v.answered for v in book.views()) == 3
                         and sum(bool(v.linkedid) for v in book.views()) == 8,
                         what="3 answered, 5 waiting")  # fmt: skip
        connects = st.app.ami.connects
        await st.sim.restart(down_s=0.5)  # connection refused for 0.5 s, then a fresh PBX
        assert await asyncio.wait_for(asyncio.gather(*(c.finished for c in before)), 5) == [
            "lost"] * 8  # fmt: skip
        await wait_until(lambda n=connects: st.app.ami.connects > n, 5, "reconnected")
        await wait_until(lambda: len(book) == 0, 5, "lost calls closed")
        for op in st.sim.members("wallet-ru") + st.sim.members("terminal-ru"):
            assert not op.in_call  # static members came back idle
        for i in range(3):  # the general line's staff have short calls
            add_operator(st.sim, "general-line", f"PJSIP/{2001 + i}", f"General {i}",
                         answer_after_s=1, talk_time_s=2)  # fmt: skip
        after = [st.sim.place_call(SimCaller(f"7903{i:07d}", dialled=GENERAL_DID, patience_s=60))
                 for i in range(6)]  # fmt: skip
        outcomes = await asyncio.wait_for(asyncio.gather(*(c.finished for c in after)), 10)
        by_uid = await closed_cards(st, before + after)
    assert len(by_uid) == 14
    assert not {c.uniqueid for c in before} & {c.uniqueid for c in after}  # a new epoch
    for call in before:
        card = by_uid[call.uniqueid]
        assert (card["outcome"], card["close_reason"]) in (
            ("answered", "lost_on_pbx_restart"), ("lost", "lost_on_pbx_restart"))  # fmt: skip
    assert Counter(by_uid[c.uniqueid]["outcome"] for c in before) == {"answered": 3, "lost": 5}
    for call, outcome in zip(after, outcomes, strict=True):
        card = by_uid[call.uniqueid]
        assert card["close_reason"] == "normal"
        assert card["outcome"] == outcome == "answered"


async def test_flapping_ami_connection_under_load_keeps_one_card_per_call(
    tmp_path: Path,
) -> None:
    async with stack(tmp_path) as st:
        staff(st, 6, talk_time_s=3)
        load = asyncio.create_task(st.sim.run_load(20, 2.0, lambda i: caller(i, 60), wait=False))
        for _ in range(3):
            await asyncio.sleep(0.3)
            connects = st.app.ami.connects
            await st.sim.drop_ami()  # FIN: ccrouter notices at once
            await wait_until(lambda n=connects: st.app.ami.connects > n, 5, "reconnected")
            await asyncio.sleep(0.2)
            st.sim.set_half_open(True)  # silence: only the watchdog can notice
            await wait_until(lambda: not st.app.ami.connected, 5, "watchdog noticed")
            connects = st.app.ami.connects
            st.sim.set_half_open(False)
            await wait_until(lambda n=connects: st.app.ami.connects > n, 5, "reconnected")
        calls = await load
        await asyncio.wait_for(asyncio.gather(*(c.finished for c in calls)), 15)
        by_uid = await closed_cards(st, calls)
    assert len(by_uid) >= 20
    reasons = Counter(c["close_reason"] for c in by_uid.values())
    assert set(reasons) <= {"normal", "reconciled", "incomplete"}
    assert reasons["normal"] > 0


async def test_call_answered_during_an_ami_gap_gets_the_answered_outcome(tmp_path: Path) -> None:
    async with stack(tmp_path) as st:
        add_operator(st.sim, "wallet-ru", "PJSIP/1001", "Dilnoza", answer_after_s=1,
                     talk_time_s=40)  # fmt: skip
        st.sim.set_half_open(True)  # routing works (FastAGI), AMI events stop
        call = st.sim.place_call(caller(0))
        await wait_until(lambda: call.operator != "", 5, "answered while AMI is silent")
        await wait_until(lambda: not st.app.ami.connected, 5, "watchdog noticed")
        connects = st.app.ami.connects
        st.sim.set_half_open(False)
        await wait_until(lambda: st.app.ami.connects > connects, 5, "reconnected")
        assert await asyncio.wait_for(call.finished, 10) == "answered"
        (card,) = (await closed_cards(st, [call])).values()
    assert card["outcome"] == "answered" and card["operator"] == "Dilnoza"

"""Skill-based routing end to end: ccrouter + the simulator (generated queues and rules)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from structlog.testing import capture_logs

from ccrouter.config import Overflow
from ccrouter.dialplan import VAR_CARD, VAR_QUEUE_MAX_PENALTY
from ccrouter.sim import SimCaller, SimOperator
from ccrouter.sim.model import Member
from tests.routing_stack import routing_settings, routing_stack
from tests.stack import wait_until

WALLET = "712000100"  # -> wallet x ru (wallet-ru: overflow to the plain queue general)
TERMINAL = "712000200"  # -> terminal-ru (overflow: voicemail 2400@ccrouter)


async def test_login_adds_members_with_skill_penalties_and_logout_removes_them(
    tmp_path: Path,
) -> None:
    async with routing_stack(tmp_path) as st:
        assert st.members("wallet-ru") == {}
        await st.operators.login("op1001")
        await st.operators.login("op1004")
        await st.settled()
        # op1001: ru 90 / wallet 90 -> 10; op1004: ru 100 / wallet 30 -> 70
        assert st.members("wallet-ru") == {"PJSIP/1001": (10, False), "PJSIP/1004": (70, False)}
        assert st.members("ccrouter-op-op1001") == {"PJSIP/1001": (0, False)}
        await st.operators.pause("op1004", "lunch")
        await st.settled()
        assert {m.paused_reason for m in st.sim.members("terminal-ru")
                if m.interface == "PJSIP/1004"} == {"lunch"}  # fmt: skip
        await st.operators.set_skills("op1004", {"wallet": 95})
        await st.settled()
        assert st.members("wallet-ru")["PJSIP/1004"] == (5, True)
        await st.operators.logout("op1004")
        await st.settled()
        assert "PJSIP/1004" not in st.members("wallet-ru")


async def test_skilled_operator_first_then_expansion_after_the_wait_not_before(
    tmp_path: Path,
) -> None:
    async with routing_stack(tmp_path) as st:
        st.sim.add_operator(SimOperator("PJSIP/1001", answer_after_s=1, talk_time_s=200))
        await st.operators.login("op1001")  # penalty 10 in wallet-ru
        await st.operators.login("op1004")  # penalty 70: only after 60 s (min level 1)
        await st.settled()
        first = st.sim.place_call(SimCaller("79000000001", dialled=WALLET))
        await wait_until(lambda: first.operator != "", what="first answered")
        assert first.operator == "PJSIP/1001"  # the skilled one, though both were free
        assert first.variables[VAR_QUEUE_MAX_PENALTY] == "20"
        second = st.sim.place_call(SimCaller("79000000002", dialled=WALLET, patience_s=200))
        assert await asyncio.wait_for(second.finished, 10) == "answered"
        assert second.operator == "PJSIP/1004"
        assert 60 <= second.hold_time < 75, second.hold_time  # the 60 s step, not the 30 s one
        assert second.variables[VAR_QUEUE_MAX_PENALTY] == "99"  # the rule raised it
        card = await st.card(second.variables[VAR_CARD])
        assert card["wait_s"] == second.hold_time and card["operator"] == "Sergey Pak"


async def test_repeat_caller_reaches_the_last_operator_first(tmp_path: Path) -> None:
    async with routing_stack(tmp_path) as st:
        await st.operators.login("op1001")  # the better one for wallet-ru (10)...
        await st.operators.login("op1002")  # ... than Anna (20)
        await st.operators.pause("op1001", "training")
        await st.settled()
        first = st.sim.place_call(SimCaller("79001112200", dialled=WALLET))
        assert await asyncio.wait_for(first.finished, 10) == "answered"
        assert first.operator == "PJSIP/1002"
        await st.operators.unpause("op1001")
        await st.settled()
        await asyncio.sleep(6 / 40)  # Anna's wrap-up (5 s)
        again = st.sim.place_call(SimCaller("79001112200", dialled=WALLET))
        assert await asyncio.wait_for(again.finished, 10) == "answered"
        assert again.operator == "PJSIP/1002"  # rung first in Anna's personal queue
        other = st.sim.place_call(SimCaller("79009999999", dialled=WALLET))
        assert await asyncio.wait_for(other.finished, 10) == "answered"
        assert other.operator == "PJSIP/1001"  # a new caller gets the skilled operator
        await wait_until(lambda: len(st.app.tracker.book) == 0, what="cards closed")
        cards = {c["number"]: c for c in await st.cards()}
    one, two = cards[first.variables[VAR_CARD]], cards[again.variables[VAR_CARD]]
    assert two["repeat_of"] == one["number"] and two["last_agent_hit"] is True
    assert two["operator"] == "Anna Smirnova" and two["queue"] == "ccrouter-op-op1002"
    assert two["priority"] == "5"  # repeat callers go first
    assert cards[other.variables[VAR_CARD]]["last_agent_hit"] is None


async def test_last_agent_busy_goes_straight_to_the_target(tmp_path: Path) -> None:
    async with routing_stack(tmp_path) as st:
        st.sim.add_operator(SimOperator("PJSIP/1002", answer_after_s=1, talk_time_s=5))
        await st.operators.login("op1002")
        await st.settled()
        first = st.sim.place_call(SimCaller("79001112201", dialled=WALLET))
        assert await asyncio.wait_for(first.finished, 10) == "answered"
        await st.operators.pause("op1002", "break")
        await st.operators.login("op1001")
        await st.settled()
        again = st.sim.place_call(SimCaller("79001112201", dialled=WALLET))
        assert await asyncio.wait_for(again.finished, 10) == "answered"
        assert again.operator == "PJSIP/1001"
        card = await st.card(again.variables[VAR_CARD])
    assert card["repeat_of"] == first.variables[VAR_CARD] and card["last_agent_hit"] is None


async def test_overflow_to_the_second_line_after_the_queue_timeout(tmp_path: Path) -> None:
    s = routing_settings()
    overflow = {"timeout_s": 20, "overflow": Overflow(queue="second-line")}
    targets = [t.model_copy(update=overflow) if t.name == "wallet-ru" else t for t in s.targets]
    async with routing_stack(tmp_path, s.model_copy(update={"targets": targets})) as st:
        st.sim.add_queue("second-line", strategy="ringall", timeout=15)  # not ccrouter's
        st.sim.add_operator(SimOperator("PJSIP/2001", answer_after_s=1, talk_time_s=5))
        st.sim.add_member("second-line", "PJSIP/2001", name="Second Line")
        await st.operators.login("op1001")
        await st.operators.pause("op1001", "meeting")  # logged in (staffed) but not answering
        await st.settled()
        call = st.sim.place_call(SimCaller("79001234567", dialled=WALLET, patience_s=100))
        assert await asyncio.wait_for(call.finished, 10) == "answered"
        assert call.queue == "second-line" and call.operator == "PJSIP/2001"
        await wait_until(lambda: len(st.app.tracker.book) == 0, what="card closed")
        card = await st.card(call.variables[VAR_CARD])
    assert card["escalation"] == "wallet-ru->second-line" and card["outcome"] == "answered"
    assert card["target"] == "wallet-ru" and card["queue"] == "second-line"
    assert card["operator"] == "Second Line"


async def test_nobody_logged_in_overflows_at_once(tmp_path: Path) -> None:
    async with routing_stack(tmp_path) as st:
        await st.operators.login("op1002")  # no terminal skill
        await st.settled()
        call = st.sim.place_call(SimCaller("79001234000", dialled=TERMINAL))
        await asyncio.wait_for(call.finished, 10)
        assert "VoiceMail(2400@ccrouter,u)" in call.agi_commands
        assert call.queue == ""  # never queued
        card = await st.card(call.variables[VAR_CARD])
    assert card["escalation"] == "terminal-ru->voicemail"


async def test_reconnect_with_drifted_membership_sends_exactly_the_missing_actions(
    tmp_path: Path,
) -> None:
    async with routing_stack(tmp_path) as st:
        await st.operators.login("op1001")
        await st.operators.login("op1002")
        await st.settled()
        # Asterisk changes behind ccrouter's back (no events), e.g. a reload while it was away:
        queues = st.sim._core.queues  # the PBX state itself
        del queues["wallet-ru"].members["PJSIP/1001"]
        queues["general-line"].members["PJSIP/1002"].penalty = 55
        queues["wallet-ru"].members["PJSIP/1002"].paused = True
        queues["wallet-uz"].members["PJSIP/9999"] = Member("PJSIP/9999", "Stray", "PJSIP/9999",
                                                           dynamic=True)  # fmt: skip
        connects = st.app.ami.connects
        with capture_logs() as logs:
            await st.sim.drop_ami()
            await wait_until(lambda: st.app.ami.connects > connects, what="reconnected")
            await st.settled()
        sent = sorted((e["action"], e["queue"], e["interface"]) for e in logs
                      if e["event"] == "membership_action")  # fmt: skip
    assert sent == [
        ("Add", "wallet-ru", "PJSIP/1001"),
        ("Remove", "wallet-uz", "PJSIP/9999"),
        ("SetPause", "wallet-ru", "PJSIP/1002"),
        ("SetPenalty", "general-line", "PJSIP/1002"),
    ]


async def test_manual_pause_in_asterisk_is_reverted(tmp_path: Path) -> None:
    from ccrouter.sim.testing import AmiClient

    async with routing_stack(tmp_path) as st:
        await st.operators.login("op1001")
        await st.settled()
        ami = await AmiClient.connect(st.sim.ami_port)
        await ami.login(events="off", secret="demo-secret")
        with capture_logs() as logs:
            await ami.send("QueuePause", Queue="wallet-ru", Interface="PJSIP/1001",
                           Paused="true", Reason="by hand")  # fmt: skip
            await wait_until(lambda: any(e["event"] == "membership_manual_change" for e in logs))
            await st.settled()
        await ami.close()
        assert st.members("wallet-ru")["PJSIP/1001"] == (10, False)


async def test_manual_pause_is_adopted_when_configured(tmp_path: Path) -> None:
    from ccrouter.sim.testing import AmiClient

    async with routing_stack(tmp_path, routing_settings(manual_changes="adopt")) as st:
        await st.operators.login("op1001")
        await st.settled()
        ami = await AmiClient.connect(st.sim.ami_port)
        await ami.login(events="off", secret="demo-secret")
        await ami.send("QueuePause", Interface="PJSIP/1001", Paused="true", Reason="phone")
        await wait_until(lambda: st.membership.states["op1001"].paused, what="adopted")
        await st.settled()
        await ami.close()
        state = await st.operators.state("op1001")
        assert state.paused and state.pause_reason == "phone"
        assert all(p for _, p in (st.members(q)["PJSIP/1001"] for q in ("wallet-ru", "wallet-uz")))

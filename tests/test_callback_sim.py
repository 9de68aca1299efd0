"""The simulator's Originate to a customer number (what a callback leg looks like on the wire).

Asterisk (main/manager.c, main/channel.c `__ast_request_and_dial`): `Async: true` answers
"Originate successfully queued" at once; the channel gets `ChannelId` as its Uniqueid; the
`OriginateResponse` carries the ActionID and `Reason` = the last AST_CONTROL_* frame
(include/asterisk/frame.h: 3 ringing = no answer, 4 answer, 5 busy, 8 congestion; 0 = no
channel at all); a failed dial hangs its channel up before the OriginateResponse.
"""

from __future__ import annotations

import pytest

from ccrouter import dialplan as dp
from ccrouter.sim import PbxSimulator, SimCustomer, SimOperator
from ccrouter.sim.testing import AmiClient


async def _sim() -> tuple[PbxSimulator, AmiClient]:
    sim = PbxSimulator(agi_port=1, time_scale=50.0, noise=True)
    sim.add_queue("wallet-ru", timeout=10)
    sim.add_operator(SimOperator("PJSIP/1001", answer_after_s=1.0, talk_time_s=2.0))
    sim.add_member("wallet-ru", "PJSIP/1001", name="Dilnoza")
    await sim.start()
    ami = await AmiClient.connect(sim.ami_port)
    await ami.login()
    await ami.until("SuccessfulAuth")
    return sim, ami


async def _originate(ami: AmiClient, number: str, action_id: str) -> None:
    await ami.send("Originate", ActionID=action_id, ChannelId=f"cb-{action_id}",
                   Channel=f"PJSIP/{number}@trunk", Context=dp.CONTEXT_CALLBACK, Exten="s",
                   Priority="1", Timeout="20000", Async="true",
                   Variable=f"{dp.VAR_QUEUE}=wallet-ru,{dp.VAR_QUEUE_PRIO}=10")  # fmt: skip


@pytest.mark.parametrize(("answer", "reason", "cause"), [
    ("busy", "5", "17"), ("no_answer", "3", "19"), ("congestion", "8", "34")])  # fmt: skip
async def test_unanswered_customer_hangs_up_then_reports_the_reason(
    answer: str, reason: str, cause: str
) -> None:
    sim, ami = await _sim()
    try:
        sim.add_customer(SimCustomer("79001110000", answer=answer, answer_after_s=1))  # type: ignore[arg-type]
        await _originate(ami, "79001110000", "o-1")
        msgs = await ami.until("OriginateResponse", timeout=5)
        assert msgs[0]["Message"] == "Originate successfully queued"
        events = [m for m in msgs if "Event" in m]
        names = [m["Event"] for m in events]
        assert names.index("Newchannel") < names.index("Hangup") < names.index("OriginateResponse")
        new = events[names.index("Newchannel")]
        assert new["Uniqueid"] == "cb-o-1" and new["Channel"].startswith("PJSIP/trunk-")
        assert events[names.index("Hangup")]["Cause"] == cause
        resp = events[-1]
        assert (resp["ActionID"], resp["Response"], resp["Reason"]) == ("o-1", "Failure", reason)
        assert sim.live_channels() == []
    finally:
        await ami.close()
        await sim.close()


async def test_unreachable_customer_gets_reason_0_and_no_channel() -> None:
    sim, ami = await _sim()
    try:
        sim.add_customer(SimCustomer("79001110000", answer="fail"))
        await _originate(ami, "79001110000", "o-2")
        msgs = await ami.until("OriginateResponse", timeout=5)
        assert not any(m.get("Event") == "Newchannel" for m in msgs)
        assert (msgs[-1]["Response"], msgs[-1]["Reason"]) == ("Failure", "0")
    finally:
        await ami.close()
        await sim.close()


async def test_answered_customer_runs_the_callback_context_into_the_queue_first() -> None:
    sim, ami = await _sim()
    try:
        sim.add_customer(SimCustomer("79001110000", answer_after_s=1))
        await _originate(ami, "79001110000", "o-3")
        msgs = await ami.until("AgentConnect", timeout=5)
        events = [m for m in msgs if "Event" in m]
        names = [m["Event"] for m in events]
        resp = events[names.index("OriginateResponse")]
        assert (resp["Response"], resp["Reason"], resp["Uniqueid"]) == ("Success", "4", "cb-o-3")
        assert names.index("OriginateResponse") < names.index("QueueCallerJoin")
        join = events[names.index("QueueCallerJoin")]
        assert (join["Uniqueid"], join["Linkedid"], join["Queue"]) == ("cb-o-3", "cb-o-3",
                                                                      "wallet-ru")
        exts = [(m["Application"], m["AppData"]) for m in events if m["Event"] == "Newexten"]
        assert ("Queue", "wallet-ru,,,,") in exts
        (leg,) = sim.customer_calls
        assert await leg.finished == "answered"
        assert leg.variables[dp.VAR_QUEUE_PRIO] == "10"
    finally:
        await ami.close()
        await sim.close()

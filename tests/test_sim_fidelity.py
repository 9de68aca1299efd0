"""The simulator's event stream against the recorded Asterisk 22 streams (ami_shape)."""

from __future__ import annotations

import asyncio

import ami_shape  # type: ignore[import-not-found]
import pytest

from ccrouter import dialplan as dp
from ccrouter.sim import PbxSimulator, SimCall, SimCaller, SimOperator
from ccrouter.sim.model import LostCallerBlock
from ccrouter.sim.testing import AmiClient, ScriptedAgi, route_to
from tests.conftest import fixture_bytes


async def _lab(queue: str) -> tuple[PbxSimulator, AmiClient, ScriptedAgi]:
    agi = ScriptedAgi(route_to(queue))
    sim = PbxSimulator(agi_port=await agi.start(), time_scale=50.0, noise=True)
    sim.add_queue("support-ru", strategy="rrmemory", timeout=10)
    sim.add_queue("support-uz", strategy="leastrecent", timeout=10)
    sim.add_operator(SimOperator("Local/agent1@lab-agents", answer_after_s=1.0, talk_time_s=4.0))
    sim.add_member("support-ru", "Local/agent1@lab-agents", name="Agent One RU")
    sim.add_member("support-uz", "Local/agent3@lab-agents", name="Agent Three UZ")
    await sim.start()
    ami = await AmiClient.connect(sim.ami_port)
    await ami.send("Login", ActionID="lab-1", Username="ccrouter", Secret="lab-secret",
                   Events="on")
    await ami.until("SuccessfulAuth")
    return sim, ami, agi


def _problems(reference: str, sim: PbxSimulator) -> list[str]:
    ref = ami_shape.shape(fixture_bytes(reference))
    got = ami_shape.shape(sim.sent_bytes(0))
    return [p for p in ami_shape.compare(ref, got) if "lacks" in p or "never sent" in p]


async def test_answered_local_call_has_every_recorded_event_shape() -> None:
    sim, ami, agi = await _lab("support-ru")
    try:
        await ami.send("Originate", ActionID="orig-answered-1",
                       Channel=f"Local/s@{dp.CONTEXT_INBOUND}", Context="lab-caller",
                       Exten="wait", Priority="1", CallerID='"Lab Caller RU" <79001234567>',
                       Timeout="30000", Async="true")
        msgs = await ami.until("QueueMemberStatus", Status="1", timeout=5)
        assert msgs[0] == {"Response": "Success", "ActionID": "orig-answered-1",
                           "Message": "Originate successfully queued"}
        events = [m for m in msgs if "Event" in m]
        first = {m["Event"]: i for i, m in reversed(list(enumerate(events)))}
        assert first["Newchannel"] < first["OriginateResponse"]  # as recorded
        orig = events[first["OriginateResponse"]]
        join = events[first["QueueCallerJoin"]]
        assert orig["Channel"].endswith(";1") and join["Channel"].endswith(";2")
        assert join["Linkedid"] == orig["Uniqueid"]  # correlate on Linkedid
        complete = events[first["AgentComplete"]]
        assert (complete["Reason"], complete["TalkTime"]) == ("agent", "4")
        assert _problems("ami-queue-answered.txt", sim) == []
    finally:
        await ami.close()
        await sim.close()
        await agi.close()


async def test_abandoned_local_call_has_every_recorded_event_shape() -> None:
    sim, ami, agi = await _lab("support-uz")
    try:
        await ami.send("QueuePause", ActionID="lab-2", Queue="support-uz",
                       Interface="Local/agent3@lab-agents", Paused="true",
                       Reason="lab-abandon-test")
        await ami.until("QueueMemberPause")
        await ami.send("Originate", ActionID="orig-abandon-1",
                       Channel=f"Local/s@{dp.CONTEXT_INBOUND}", Context="lab-caller",
                       Exten="abandon", Priority="1", CallerID='"Lab Caller UZ" <998901234567>',
                       Timeout="30000", Async="true", Variable="SIM_PATIENCE=5")
        msgs = await ami.until("Hangup", timeout=5, Channel=f"Local/s@{dp.CONTEXT_INBOUND}-"
                               "00000000;2")
        abandon = next(m for m in msgs if m.get("Event") == "QueueCallerAbandon")
        assert (abandon["Queue"], abandon["HoldTime"]) == ("support-uz", "5")
        await ami.send("QueuePause", ActionID="lab-3", Queue="support-uz",
                       Interface="Local/agent3@lab-agents", Paused="false")
        await ami.until("QueueMemberPause")
        await asyncio.sleep(0)
        assert _problems("ami-queue-abandoned.txt", sim) == []
    finally:
        await ami.close()
        await sim.close()
        await agi.close()


NO_CALLER = "ami-agentcomplete-without-caller.txt"


async def _short_calls(n: int, *, agent_ends: bool, lost: LostCallerBlock | None,
                       seed: int = 0) -> tuple[PbxSimulator, list[SimCall]]:
    """`n` Local callers, one after the other, each talking 0.5 s to op21 (who hangs up when
    `agent_ends`, else the caller does); returns the closed simulator and the calls."""
    agi = ScriptedAgi(route_to("wallet-ru"))
    sim = PbxSimulator(agi_port=await agi.start(), time_scale=50.0, noise=True, seed=seed,
                       lost_caller_block=lost)  # fmt: skip
    sim.add_queue("wallet-ru", timeout=10)
    sim.add_operator(SimOperator("Local/op21@acc-agents", answer_after_s=0.5, talk_time_s=0.5,
                                 hangs_up=agent_ends))  # fmt: skip
    sim.add_member("wallet-ru", "Local/op21@acc-agents", name="Perf 21")
    await sim.start()
    ami = await AmiClient.connect(sim.ami_port)
    try:
        await ami.login()
        calls = []
        for i in range(n):
            call = sim.place_call(SimCaller(f"790300{i:04d}", "X1", local=True))
            assert await asyncio.wait_for(call.finished, 5) == "answered"
            calls.append(call)
        return sim, calls
    finally:
        await ami.close()
        await sim.close()
        await agi.close()


def _agent_completes(data: bytes) -> list[dict[str, str]]:
    return [m for m in ami_shape.messages(data) if m.get("event") == "AgentComplete"]


@pytest.mark.parametrize("agent_ends", [False, True], ids=["caller-ends", "agent-ends"])
@pytest.mark.parametrize("no_block", [1.0, 0.0], ids=["no-block", "dest-only"])
async def test_short_call_agent_complete_without_caller_block_as_recorded(
    agent_ends: bool, no_block: float,
) -> None:
    """Forced shapes: header for header and in order, the fixture's events (no block: its
    first; Dest* block only: its second and third)."""
    lost = LostCallerBlock(caller_ends=1.0, agent_ends=1.0, no_block=no_block)
    sim, (call,) = await _short_calls(1, agent_ends=agent_ends, lost=lost)
    (got,) = _agent_completes(sim.sent_bytes(0))
    ref = _agent_completes(fixture_bytes(NO_CALLER))
    expected = ref[0] if no_block else ref[2 if agent_ends else 1]
    assert list(got) == list(expected)
    assert call.agent_complete == ("none" if no_block else "dest")
    assert (got["reason"], got["talktime"]) == ("agent" if agent_ends else "caller", "0")
    assert (got["queue"], got["interface"], got["membername"]) == (
        "wallet-ru", "Local/op21@acc-agents", "Perf 21")
    if not no_block:
        assert got["destlinkedid"] == call.linkedid != got["destuniqueid"]
        assert _problems(NO_CALLER, sim) == []


async def test_short_calls_keep_the_callers_block_unless_it_is_lost() -> None:
    """Rate 0: every short call has the usual caller block (and the answered transcript's
    headers); the default rates lose it for a few of 100 caller-ended short calls, as seen."""
    sim, calls = await _short_calls(3, agent_ends=False, lost=LostCallerBlock(0.0, 0.0))
    assert [c.agent_complete for c in calls] == ["caller"] * 3
    assert all(m["uniqueid"] and m["linkedid"] for m in _agent_completes(sim.sent_bytes(0)))
    sim, calls = await _short_calls(100, agent_ends=False, lost=None, seed=7)
    lost = [c.agent_complete for c in calls if c.agent_complete != "caller"]
    assert 2 <= len(lost) <= 8, lost


def test_lost_caller_block_rates_are_checked() -> None:
    with pytest.raises(ValueError, match=r"LostCallerBlock.caller_ends must be within 0..1"):
        LostCallerBlock(caller_ends=5.0)
    with pytest.raises(ValueError, match=r"LostCallerBlock.max_talk_s must be >= 0"):
        LostCallerBlock(max_talk_s=-1)

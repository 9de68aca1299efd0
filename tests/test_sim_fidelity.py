"""The simulator's event stream against the recorded Asterisk 22 streams (ami_shape)."""

from __future__ import annotations

import asyncio

import ami_shape  # type: ignore[import-not-found]

from ccrouter import dialplan as dp
from ccrouter.sim import PbxSimulator, SimOperator
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

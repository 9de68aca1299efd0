"""Calls through the simulator: a scripted FastAGI `route` server and a raw AMI client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from ccrouter import dialplan as dp
from ccrouter.sim import PbxSimulator, SimCaller, SimOperator
from ccrouter.sim.testing import AgiScript, AmiClient, ScriptedAgi, route_to
from tests.conftest import agi_transcript

Setup = Callable[..., Awaitable[tuple[PbxSimulator, AmiClient, ScriptedAgi]]]


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    made: list[tuple[PbxSimulator, AmiClient, ScriptedAgi]] = []

    async def make(script: AgiScript, noise: bool = False, **kw: object) -> tuple[
            PbxSimulator, AmiClient, ScriptedAgi]:
        agi = ScriptedAgi(script)
        port = await agi.start()
        sim = PbxSimulator(agi_port=port, time_scale=50.0, noise=noise, **kw)  # type: ignore[arg-type]
        await sim.start()
        ami = await AmiClient.connect(sim.ami_port)
        await ami.login()
        await ami.until("SuccessfulAuth")
        made.append((sim, ami, agi))
        return sim, ami, agi

    yield make
    for sim, ami, agi in made:
        await ami.close()
        await sim.close()
        await agi.close()


def names(msgs: list[dict[str, str]]) -> list[str]:
    return [m["Event"] for m in msgs if "Event" in m]


async def test_answered_call_emits_the_queue_story(setup: Setup) -> None:
    sim, ami, _ = await setup(route_to("wallet-ru"))
    sim.add_queue("wallet-ru", strategy="rrmemory", timeout=15)
    sim.add_operator(SimOperator("PJSIP/1001", answer_after_s=2.0, talk_time_s=30.0))
    sim.add_member("wallet-ru", "PJSIP/1001", name="Anna")
    call = sim.place_call(SimCaller(number="79001234567", name="Ivan", dialled="2000"))
    assert await asyncio.wait_for(call.finished, 5) == "answered"
    msgs = await ami.until("QueueMemberStatus", Status="1")
    assert names(msgs) == [
        "QueueCallerJoin", "AgentCalled", "QueueMemberStatus", "QueueCallerLeave",
        "QueueMemberStatus", "AgentConnect", "Hangup", "Hangup", "AgentComplete",
        "QueueMemberStatus"]
    by = {m["Event"]: m for m in msgs}
    assert by["QueueCallerJoin"]["Uniqueid"] == call.uniqueid == call.linkedid
    assert by["QueueCallerJoin"]["Channel"].startswith("PJSIP/trunk-")
    assert (by["AgentConnect"]["HoldTime"], by["AgentConnect"]["RingTime"]) == ("2", "2")
    assert (by["AgentComplete"]["TalkTime"], by["AgentComplete"]["Reason"]) == ("30", "agent")
    assert [m["Status"] for m in msgs if m.get("Event") == "QueueMemberStatus"] == ["6", "2", "1"]
    assert msgs[-1]["CallsTaken"] == "1"
    assert call.agi_commands == ["SET VARIABLE CCROUTER_STATUS ok",
                                 "SET VARIABLE CCROUTER_QUEUE wallet-ru"]
    assert call.variables[dp.VAR_QUEUE] == "wallet-ru"
    assert sim.live_channels() == []


async def test_caller_who_loses_patience_abandons(setup: Setup) -> None:
    sim, ami, _ = await setup(route_to("wallet-ru"))
    sim.add_queue("wallet-ru")
    sim.add_member("wallet-ru", "PJSIP/1001", paused=True)
    call = sim.place_call(SimCaller(number="998901234567", patience_s=5.0))
    assert await asyncio.wait_for(call.finished, 5) == "abandoned"
    msgs = await ami.until("Hangup")
    assert names(msgs) == ["QueueCallerJoin", "QueueCallerAbandon", "QueueCallerLeave", "Hangup"]
    abandon = msgs[1]
    assert (abandon["Position"], abandon["OriginalPosition"]) == ("1", "1")
    assert abandon["HoldTime"] == "5"


async def test_queue_timeout_leaves_without_abandon(setup: Setup) -> None:
    sim, ami, _ = await setup(route_to("wallet-ru", ((dp.VAR_QUEUE_TIMEOUT, "3"),)))
    sim.add_queue("wallet-ru")
    call = sim.place_call(SimCaller(number="79001234567"))
    assert await asyncio.wait_for(call.finished, 5) == "timeout"
    assert names(await ami.until("Hangup")) == ["QueueCallerJoin", "QueueCallerLeave", "Hangup"]


async def test_unanswered_member_is_skipped_for_the_next_one(setup: Setup) -> None:
    sim, ami, _ = await setup(route_to("q"))
    sim.add_queue("q", strategy="rrmemory", timeout=5, retry=1)
    sim.add_operator(SimOperator("PJSIP/1", no_answer=True))
    sim.add_operator(SimOperator("PJSIP/2", answer_after_s=1.0, talk_time_s=2.0, hangs_up=False))
    sim.add_member("q", "PJSIP/1")
    sim.add_member("q", "PJSIP/2")
    call = sim.place_call(SimCaller(number="1"))
    assert await asyncio.wait_for(call.finished, 5) == "answered"
    msgs = await ami.until("AgentComplete")
    agent = [(m["Event"], m["Interface"]) for m in msgs if m.get("Event", "").startswith("Agent")]
    assert agent == [("AgentCalled", "PJSIP/1"), ("AgentRingNoAnswer", "PJSIP/1"),
                     ("AgentCalled", "PJSIP/2"), ("AgentConnect", "PJSIP/2"),
                     ("AgentComplete", "PJSIP/2")]
    assert msgs[-1]["Reason"] == "caller"
    assert msgs[-1]["HoldTime"] == "7"  # 5 s ring timeout + 1 s retry + 1 s ring
    assert call.operator == "PJSIP/2"


async def test_priority_and_penalty_limits(setup: Setup) -> None:
    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter, env: dict[str, str]) -> None:
        vip = env["agi_callerid"] == "2"
        for line in (f"SET VARIABLE {dp.VAR_STATUS} ok", f"SET VARIABLE {dp.VAR_QUEUE} q",
                     f"SET VARIABLE {dp.VAR_QUEUE_PRIO} {10 if vip else 0}",
                     f"SET VARIABLE {dp.VAR_QUEUE_MAX_PENALTY} 1"):
            w.write(line.encode() + b"\n")
            await r.readline()

    sim, ami, _ = await setup(script)
    sim.add_queue("q", strategy="ringall")
    sim.add_operator(SimOperator("PJSIP/weak", answer_after_s=0.5))
    sim.add_operator(SimOperator("PJSIP/ok", answer_after_s=0.5, talk_time_s=1.0))
    sim.add_member("q", "PJSIP/weak", penalty=5)
    sim.add_member("q", "PJSIP/ok", penalty=1, paused=True)
    first = sim.place_call(SimCaller(number="1"))
    second = sim.place_call(SimCaller(number="2"))
    joins = [m for m in await ami.until("QueueCallerJoin", CallerIDNum="2")
             if m.get("Event") == "QueueCallerJoin"]
    assert [(j["CallerIDNum"], j["Position"]) for j in joins] == [("1", "1"), ("2", "1")]
    await ami.send("QueuePause", Interface="PJSIP/ok", Paused="false")
    assert await asyncio.wait_for(second.finished, 5) == "answered"
    assert await asyncio.wait_for(first.finished, 5) == "answered"
    await ami.until("AgentComplete", CallerIDNum="1")
    called = [m["Interface"] for m in ami.seen if m.get("Event") == "AgentCalled"]
    assert called == ["PJSIP/ok", "PJSIP/ok"]  # never the penalty-5 member
    assert first.hold_time > second.hold_time


async def test_status_not_ok_goes_to_the_fallback_queue(setup: Setup) -> None:
    async def refuse(r: asyncio.StreamReader, w: asyncio.StreamWriter, env: dict[str, str]) -> None:
        w.write(f"SET VARIABLE {dp.VAR_STATUS} {dp.STATUS_ERROR}\n".encode())
        await r.readline()

    sim, ami, _ = await setup(refuse, fallback_queue="fb")
    sim.add_queue("fb")
    sim.add_member("fb", "PJSIP/9")
    call = sim.place_call(SimCaller(number="5", hangs_up_after_s=30))
    assert await asyncio.wait_for(call.finished, 5) == "fallback"
    assert (await ami.until("AgentConnect"))[-1]["Queue"] == "fb"


async def test_unreachable_agi_server_means_failure_and_fallback() -> None:
    agi = ScriptedAgi(route_to("q"))
    port = await agi.start()
    await agi.close()  # nothing listens there any more
    sim = PbxSimulator(agi_port=port, time_scale=50.0)
    await sim.start()
    try:
        call = sim.place_call(SimCaller(number="5"))
        assert await asyncio.wait_for(call.finished, 5) == "fallback"
        assert call.agi_status == "FAILURE" and call.variables["AGISTATUS"] == "FAILURE"
    finally:
        await sim.close()


async def test_agi_environment_follows_the_recording(setup: Setup) -> None:
    sim, _, agi = await setup(route_to("nowhere"))
    call = sim.place_call(SimCaller(number="79001234567", name="Lab Caller RU", dialled="2000"))
    await asyncio.wait_for(call.finished, 5)
    recorded = [line.decode().split(": ")[0].rstrip("\n")
                for d, line in agi_transcript("agi-route-session.txt") if d == ">>"]
    env_keys = [k for k in recorded if k.startswith("agi_")]
    sent = [line.split(": ")[0] for line in agi.raw_envs[0].decode().split("\n") if line]
    assert sent == [*env_keys, "agi_arg_1"]
    env = agi.envs[0]
    assert env["agi_arg_1"] == "did=2000" and env["agi_network_script"] == dp.SCRIPT_ROUTE
    assert env["agi_request"] == f"agi://127.0.0.1:{agi.port}/{dp.SCRIPT_ROUTE}"
    assert env["agi_uniqueid"] == call.uniqueid and env["agi_context"] == dp.CONTEXT_INBOUND
    assert b"agi_accountcode: \n" in agi.raw_envs[0]
    assert await agi.closed() == b"HANGUP\n"  # sent when the server half-closes
    assert call.outcome == "ivr_only"  # the queue does not exist


async def test_dead_channel_replies_like_res_agi(setup: Setup) -> None:
    replies: list[bytes] = []

    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter, env: dict[str, str]) -> None:
        for cmd in ("SET VARIABLE LAB_STATE before-hangup", 'STREAM FILE demo-congrats ""'):
            w.write(cmd.encode() + b"\n")
            replies.append(await r.readline())
        replies.append(await r.readline())  # the unsolicited HANGUP
        for cmd in ('STREAM FILE beep ""', "GET VARIABLE LAB_STATE", "CHANNEL STATUS", "NOOP"):
            w.write(cmd.encode() + b"\n")
            replies.append(await r.readline())

    sim, _, agi = await setup(script, prompt_s=30.0)
    call = sim.place_call(SimCaller(number="1", hangs_up_after_s=3.0))
    assert await asyncio.wait_for(call.finished, 5) == "ivr_only"
    dead = b"511 Command Not Permitted on a dead channel or intercept routine\n"
    assert replies == [b"200 result=1\n", b"200 result=-1 endpos=20000\n", b"HANGUP\n", dead,
                       b"200 result=1 (before-hangup)\n", dead, b"200 result=0\n"]
    assert await agi.closed() == b""  # HANGUP is sent once only
    assert call.agi_status == "HANGUP"


async def test_dtmf_script_feeds_prompts(setup: Setup) -> None:
    replies: list[bytes] = []
    cmds = ['STREAM FILE menu "123"', "GET DATA enter-account 3000 10", "GET DATA x 3000 4",
            "WAIT FOR DIGIT 1000", "GET DATA x 3000 2", "EXEC Playback beep", "EXEC Nope x",
            "THIS IS NOT A COMMAND", "STREAM FILE", 'STREAM FILE no-such-file ""']

    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter, env: dict[str, str]) -> None:
        for cmd in cmds:
            w.write(cmd.encode() + b"\n")
            line = await r.readline()
            if line.startswith(b"520-"):
                while not line.startswith(b"520 "):
                    replies.append(line)
                    line = await r.readline()
            replies.append(line)

    sim, _, _ = await setup(script)
    call = sim.place_call(SimCaller(number="2", dtmf=["21234#", "", "7", "95"]))
    await asyncio.wait_for(call.finished, 5)
    got = replies
    assert got[:8] == [b"200 result=50 endpos=4000\n", b"200 result=1234\n",
                       b"200 result= (timeout)\n", b"200 result=55\n", b"200 result=95\n",
                       b"200 result=0\n", b"200 result=-2\n", b"510 Invalid or unknown command\n"]
    assert got[8].startswith(b"520-Invalid command syntax.  Proper usage follows:\n")
    assert got[-2] == b"520 End of proper usage.\n" and got[-1] == b"200 result=-1 endpos=0\n"


async def test_restart_drops_calls_silently_and_starts_a_new_epoch(setup: Setup) -> None:
    sim, ami, _ = await setup(route_to("q"))
    sim.add_queue("q")
    sim.add_member("q", "PJSIP/static", paused=True)
    await ami.send("QueueAdd", Queue="q", Interface="PJSIP/dyn", Paused="true")
    await ami.response()
    call = sim.place_call(SimCaller(number="1", patience_s=600))
    await ami.until("QueueCallerJoin")
    await sim.restart()
    assert await asyncio.wait_for(call.finished, 5) == "lost"
    rest = await ami.until("Shutdown")
    assert names(rest) == ["Shutdown"]
    assert await asyncio.wait_for(ami.reader.read(), 5) == b""
    assert sim.live_channels() == []
    assert [m.interface for m in sim.members("q")] == ["PJSIP/static"]
    again = sim.place_call(SimCaller(number="1", patience_s=1))
    assert again.uniqueid.split(".")[0] != call.uniqueid.split(".")[0]
    assert await asyncio.wait_for(again.finished, 5) == "abandoned"


async def test_run_load_places_poisson_arrivals(setup: Setup) -> None:
    sim, _, _ = await setup(route_to("q"))
    sim.add_queue("q", strategy="leastrecent")
    for i in range(20):
        sim.add_operator(SimOperator(f"PJSIP/{i}", answer_after_s=0.5, talk_time_s=2.0))
        sim.add_member("q", f"PJSIP/{i}")
    calls = await asyncio.wait_for(sim.run_load(rate_per_s=200, duration_s=0.25), 10)
    assert 20 <= len(calls) <= 90
    assert {c.outcome for c in calls} == {"answered"}
    assert len({c.uniqueid for c in calls}) == len(calls)

"""The simulator's AMI server against the recorded Asterisk 22 bytes, over real sockets."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest

from ccrouter.sim import PbxSimulator, SimOperator
from ccrouter.sim.testing import AmiClient
from tests.conftest import fixture_bytes

VARYING = {
    "Timestamp", "CoreStartupDate", "CoreStartupTime", "CoreReloadDate", "CoreReloadTime",
    "CoreProcessedCalls", "LastCall", "LastPause", "LoginTime", "CallsTaken", "Completed",
    "Abandoned", "TalkTime", "Holdtime", "HoldTime", "ServicelevelPerf", "ServicelevelPerf2",
    "Uniqueid", "Linkedid", "Channel", "Duration", "Priority", "ApplicationData", "EventTV",
    "SessionTV", "SessionID", "LocalAddress", "RemoteAddress", "Uptime", "LastReload",
}


def normalise(data: bytes) -> list[str]:
    """Messages with the values that legitimately vary replaced by '*'."""
    out = []
    for block in data.decode().split("\r\n\r\n"):
        lines = []
        for line in block.split("\r\n"):
            key, sep, value = line.partition(": ")
            if sep and key in VARYING:
                value = "*"
            if key == "Output" and value.startswith("Asterisk 22.10.1 built by"):
                value = "Asterisk 22.10.1 built by *"
            lines.append(f"{key}{sep}{value}")
        out.append("\r\n".join(lines))
    return out


def lab_sim(**kw: object) -> PbxSimulator:
    sim = PbxSimulator(time_scale=50.0, login_fail_delay_s=0.05, **kw)  # type: ignore[arg-type]
    sim.add_queue("support-ru", strategy="rrmemory", timeout=10)
    sim.add_queue("support-uz", strategy="leastrecent", timeout=10)
    sim.add_member("support-ru", "Local/agent1@lab-agents", name="Agent One RU")
    sim.add_member("support-ru", "Local/agent2@lab-agents", name="Agent Two RU")
    sim.add_member("support-uz", "Local/agent3@lab-agents", name="Agent Three UZ")
    sim.add_operator(SimOperator("Local/agent7@lab-agents", answer_after_s=0.0))
    return sim


@pytest.fixture
async def sim() -> AsyncIterator[PbxSimulator]:
    s = lab_sim()
    await s.start()
    yield s
    await s.close()


async def test_banner_login_and_logoff_match_the_recording(sim: PbxSimulator) -> None:
    c = await AmiClient.connect(sim.ami_port)
    await c.send("Login", ActionID="lab-1", Username="ccrouter", Secret="lab-secret", Events="on")
    await c.until("SuccessfulAuth")
    await c.send("Logoff", ActionID="lab-2")
    assert (await c.response())["Response"] == "Goodbye"
    assert await asyncio.wait_for(c.reader.read(), 5) == b""  # closed after Goodbye
    assert normalise(sim.sent_bytes(0)) == normalise(fixture_bytes("ami-login-and-banner.txt"))


async def test_wrong_secret_waits_then_errors_and_closes(sim: PbxSimulator) -> None:
    c = await AmiClient.connect(sim.ami_port)
    await c.send("Login", ActionID="bad-login-1", Username="ccrouter", Secret="wrong-secret")
    rest = await asyncio.wait_for(c.reader.read(), 5)  # EOF: the server closed
    assert c.banner + rest == fixture_bytes("ami-login-failed.txt")


async def test_actions_before_login_are_refused(sim: PbxSimulator) -> None:
    c = await AmiClient.connect(sim.ami_port)
    await c.send("QueueStatus", ActionID="x1")
    assert await c.response() == {"Response": "Error", "ActionID": "x1",
                                  "Message": "Permission denied"}
    await c.close()


def _exchanges() -> list[tuple[str, bytes]]:
    """ami-actions.txt as [(request block, the server bytes that answered it)]."""
    data = fixture_bytes("ami-actions.txt")
    data = data[data.index(b"\r\n") + 2:]  # banner
    out: list[tuple[str, bytes]] = []
    for block in data.split(b"\r\n\r\n"):
        if not block:
            continue
        if block.startswith(b"Action: "):
            out.append((block.decode(), b""))
        else:
            req, got = out[-1]
            out[-1] = (req, got + block + b"\r\n\r\n")
    return out


async def test_action_responses_are_byte_exact_with_the_recording(sim: PbxSimulator) -> None:
    c = await AmiClient.connect(sim.ami_port)
    skipped = {"lab-6"}  # `queue show` CLI output is not simulated
    for request, expected in _exchanges():
        action_id = re.search(r"ActionID: (\S+)", request)
        assert action_id is not None
        aid = action_id.group(1)
        if "CoreShowChannels" in request and aid == "lab-26":
            for _ in range(200):  # the originated Wait(3) call must be over, as in the lab
                if not sim.live_channels():
                    break
                await asyncio.sleep(0.01)
        if "CoreShowChannels" in request and aid == "lab-25":
            await asyncio.sleep(0.02)  # both legs up
        c.writer.write(request.encode() + b"\r\n\r\n")
        got = b""
        while len(got.split(b"\r\n\r\n")) - 1 < expected.count(b"\r\n\r\n"):
            got += await asyncio.wait_for(c.reader.readuntil(b"\r\n\r\n"), 5)
        if aid in skipped:
            assert got.startswith(b"Response: Success\r\nActionID: lab-6\r\n") or got.startswith(
                b"Response: Error\r\nActionID: lab-6\r\n")
            continue
        assert normalise(got) == normalise(expected), request


async def test_filters_legacy_regex_and_match_criteria(sim: PbxSimulator) -> None:
    c = await AmiClient.connect(sim.ami_port)
    await c.login()
    await c.until("SuccessfulAuth")
    await c.send("Filter", ActionID="f1", Operation="Add", Filter="Event: QueueMember(Pause|Added)")
    assert await c.response() == {"Response": "Success", "ActionID": "f1", "Message": "Success"}
    await c.send("Filter", ActionID="f2", Operation="Add", Filter="!Interface: Local/agent2")
    await c.response()
    await c.send("Filter", ActionID="f3", Operation="Add", MatchCriteria="name(Hangup)")
    await c.response()
    await c.send("Filter", ActionID="f4", Operation="Add", MatchCriteria="name(X),method(bogus)")
    assert (await c.response())["Message"].startswith("Filter was formatted incorrectly")
    await c.send("Filter", ActionID="f5", Operation="Add", Filter="(unclosed")
    assert (await c.response())["Message"].startswith("Filter did not compile")
    await c.send("Filter", ActionID="f6", Operation="Remove", Filter="x")
    assert (await c.response())["Message"] == "Unknown operation"
    for iface in ("Local/agent2@lab-agents", "Local/agent1@lab-agents"):
        await c.send("QueuePause", Interface=iface, Paused="true", Reason="lunch")
    await c.send("QueueStatus", ActionID="s1", Queue="support-uz")
    msgs = await c.until("QueueStatusComplete")
    events = [m["Event"] for m in msgs if "Event" in m]
    # agent2's pause is excluded, agent1's passes; list items are never filtered
    pauses = [m for m in c.seen if m.get("Event") == "QueueMemberPause"]
    assert [m["Interface"] for m in pauses] == ["Local/agent1@lab-agents"]
    assert events[-2:] == ["QueueMember", "QueueStatusComplete"]
    assert not any(m.get("Event") == "DeviceStateChange" for m in c.seen)
    await c.close()


async def test_queue_membership_actions_emit_member_events(sim: PbxSimulator) -> None:
    c = await AmiClient.connect(sim.ami_port)
    await c.login()
    await c.send("QueueAdd", Queue="support-ru", Interface="PJSIP/1009", Penalty="2",
                 MemberName="Nine")
    added = (await c.until("QueueMemberAdded"))[-1]
    assert (added["Membership"], added["Penalty"], added["MemberName"]) == ("dynamic", "2", "Nine")
    await c.send("QueuePenalty", Interface="PJSIP/1009", Penalty="5")
    assert (await c.until("QueueMemberPenalty"))[-1]["Penalty"] == "5"
    assert (await c.response())["Message"] == "Interface penalty set successfully"
    assert [m.penalty for m in sim.members("support-ru") if m.interface == "PJSIP/1009"] == [5]
    await c.send("QueueRemove", Queue="support-ru", Interface="Local/agent1@lab-agents")
    assert (await c.response())["Message"] == "Member not dynamic"
    await c.send("QueueRemove", Queue="support-ru", Interface="PJSIP/1009")
    await c.until("QueueMemberRemoved")
    assert "PJSIP/1009" not in [m.interface for m in sim.members("support-ru")]
    await c.close()


async def test_drop_closes_and_half_open_goes_silent(sim: PbxSimulator) -> None:
    c = await AmiClient.connect(sim.ami_port)
    await c.login(events="off")
    sim.set_half_open(True)
    await c.send("Ping", ActionID="p1")
    with pytest.raises(TimeoutError):
        await c.response(timeout=0.2)
    sim.set_half_open(False)
    assert (await c.response())["Ping"] == "Pong"  # the buffered request is read again
    await sim.drop_ami()
    assert await asyncio.wait_for(c.reader.read(), 5) == b""
    c2 = await AmiClient.connect(sim.ami_port)  # the port stays open
    assert (await c2.login())["Message"] == "Authentication accepted"
    await c2.close()


async def test_while_booting_queue_actions_answer_like_the_recording_until_fully_booted(
    sim: PbxSimulator,
) -> None:
    await sim.restart(boot_s=0.3)
    c = await AmiClient.connect(sim.ami_port)
    await c.send("Login", ActionID="lab-1", Username="ccrouter", Secret="lab-secret", Events="on")
    await c.until("SuccessfulAuth")
    assert "FullyBooted" not in [m.get("Event") for m in c.seen]  # not booted: none at login
    boot = fixture_bytes("ami-queuestatus-during-boot.txt")
    request, _, reply = boot.partition(b"\r\n\r\n")
    c.writer.write(request + b"\r\n\r\n")
    assert await c.read() == reply  # byte for byte
    for action in ("QueueSummary", "QueueAdd", "QueueRemove", "QueuePause", "QueuePenalty"):
        await c.send(action, ActionID="b1")
        assert (await c.response())["Message"] == (
            f"Invalid/unknown command: {action}. Use Action: ListCommands to show available "
            "commands.")  # fmt: skip
    await c.send("CoreStatus", ActionID="b2")  # manager.c's own actions work while booting
    assert (await c.response())["Response"] == "Success"
    booted = (await c.until("FullyBooted", timeout=2))[-1]
    assert sim.booted_at is not None
    assert (booted["Privilege"], booted["Status"]) == ("system,all", "Fully Booted")
    await c.send("QueueStatus", ActionID="b3")
    assert (await c.until("QueueStatusComplete"))[-1]["EventList"] == "Complete"
    await c.close()


async def test_a_graceful_shutdown_refuses_every_action_then_sends_shutdown(
    sim: PbxSimulator,
) -> None:
    c = await AmiClient.connect(sim.ami_port)
    await c.login()
    await c.until("SuccessfulAuth")
    restart = asyncio.create_task(sim.restart(graceful_s=0.3))
    await asyncio.sleep(0.05)
    for action in ("Originate", "Ping", "QueueStatus"):
        await c.send(action, ActionID="s1")
        assert await c.response() == {"Response": "Error", "ActionID": "s1",
                                      "Message": "Asterisk is shutting down"}  # fmt: skip
    shutdown = (await c.until("Shutdown", timeout=2))[-1]
    assert (shutdown["Shutdown"], shutdown["Restart"]) == ("Cleanly", "True")
    assert await asyncio.wait_for(c.reader.read(), 5) == b""  # then the socket closes
    await restart
    c2 = await AmiClient.connect(sim.ami_port)
    await c2.login()
    await c2.send("Ping", ActionID="p2")
    assert (await c2.response())["Ping"] == "Pong"
    await c2.close()

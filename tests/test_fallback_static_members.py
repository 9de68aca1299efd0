"""routing.fallback_static_members: the fallback queue's static members in the generated
queues_ccrouter.conf, checked in the config, loaded by the simulator as app_queue loads them,
and left in place by ccrouter's membership sync (AMI cannot remove a static member, app_queue.c
remove_from_queue: `Member not dynamic`), which pauses the ones whose operator is logged out."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path

from structlog.testing import capture_logs

from ccrouter.asterisk_conf import queues_conf
from ccrouter.config import Settings, check_settings, load_settings
from ccrouter.dialplan import PAUSE_STATIC_LOGGED_OUT
from ccrouter.sim import PbxSimulator, SimCaller, SimOperator
from tests.conftest import ROOT
from tests.routing_stack import RoutingStack, routing_settings, routing_stack
from tests.stack import wait_until

EXAMPLE = ROOT / "config" / "ccrouter.yaml"
EMPTY = "  fallback_static_members: []\n"


def errors(tmp_path: Path, members: str, extra: tuple[str, str] = ("", "")) -> list[str]:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert text.count(EMPTY) == 1
    text = text.replace(EMPTY, f"  fallback_static_members: {members}\n").replace(*extra)
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return [str(e).replace(str(path), "c.yaml").split(": ", 1)[1]
            for e in check_settings(path, environ={})]


def test_static_members_are_operators_interfaces_once_each(tmp_path: Path) -> None:
    assert errors(tmp_path, "[PJSIP/1002, PJSIP/1005]") == []
    assert errors(tmp_path, "[PJSIP/1002, PJSIP/1009, PJSIP/1002]") == [
        "routing.fallback_static_members[1]: unknown operator interface 'PJSIP/1009'; declared:"
        " PJSIP/1001, PJSIP/1002, PJSIP/1003, PJSIP/1004, PJSIP/1005, PJSIP/1006",
        "routing.fallback_static_members[2]: duplicate static member 'PJSIP/1002' (first: [0])"]


def test_static_members_need_a_fallback_queue_the_generated_file_defines(tmp_path: Path) -> None:
    own = ("fallback_queue: general-line\n", "fallback_queue: my-own-queue\n")
    assert errors(tmp_path, "[PJSIP/1002]", own) == [
        "routing.fallback_static_members: the fallback queue 'my-own-queue' is no target's queue,"
        " so queues_ccrouter.conf does not define it: write its `member =>` lines in your own"
        " queues.conf"]
    none = ("fallback_queue: general-line\n", "fallback_queue: null\n")
    assert errors(tmp_path, "[PJSIP/1002]", none) == [
        "routing.fallback_static_members: static members need a fallback queue"
        " (routing.fallback_queue is null)"]
    assert errors(tmp_path, "[]", none) == []


def test_a_name_a_member_line_cannot_hold_is_an_error(tmp_path: Path) -> None:
    comma = ("name: Anna Smirnova\n", "name: Smirnova, Anna\n")
    assert errors(tmp_path, "[PJSIP/1002]", comma) == [
        "routing.fallback_static_members[0]: operator 'op1002': its name 'Smirnova, Anna' cannot"
        " go into a queues.conf member line (no , ; \\ \" or newline)"]
    assert errors(tmp_path, "[PJSIP/1001]", comma) == []  # not a static member: no line


def static_settings(*interfaces: str) -> Settings:
    return routing_settings(fallback_static_members=list(interfaces))


def member_lines(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        if m := re.fullmatch(r"\[(.+)\]", line):
            section = m.group(1)
        elif line.startswith("member => "):
            out.setdefault(section, []).append(line.removeprefix("member => "))
    return out


def test_the_fallback_queue_section_lists_them_as_ccrouter_weighs_them() -> None:
    text = queues_conf(static_settings("PJSIP/1002", "PJSIP/1006"))
    # general (product general, language ru, expansion min_level 1): penalty 100 - min(levels)
    assert member_lines(text) == {"general-line": ["PJSIP/1002,10,Anna Smirnova,PJSIP/1002",
                                                   "PJSIP/1006,50,Rustam Nazarov,PJSIP/1006"]}
    assert member_lines(queues_conf(static_settings())) == {}
    example = load_settings(EXAMPLE, {})
    assert "routing.fallback_static_members" in queues_conf(example)  # the hint when none


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_with_ccrouter_down_a_fallback_caller_reaches_a_static_member() -> None:
    """A freshly started PBX (as after a restart) without ccrouter: the route AGI fails, the
    caller goes to the fallback queue, whose only members are the static ones."""
    answered = {}
    for members in ((), ("PJSIP/1002",)):
        settings = static_settings(*members)
        sim = PbxSimulator(agi_port=closed_port(), time_scale=40.0, noise=False,
                           fallback_queue="general-line")  # fmt: skip
        await sim.start()
        try:
            sim.load_queues(queues_conf(settings))
            sim.add_operator(SimOperator("PJSIP/1002", answer_after_s=1, talk_time_s=2))
            assert [(m.interface, m.penalty, m.name, m.dynamic)
                    for m in sim.members("general-line")] == [
                ("PJSIP/1002", 10, "Anna Smirnova", False)][:len(members)]  # fmt: skip
            call = sim.place_call(SimCaller("79001230000", patience_s=20))
            assert await asyncio.wait_for(call.finished, 10) == "fallback"
            answered[members] = call.operator
        finally:
            await sim.close()
    assert answered == {(): "", ("PJSIP/1002",): "PJSIP/1002"}


def general_line(st: RoutingStack) -> dict[str, tuple[int, bool, str, bool]]:
    return {m.interface: (m.penalty, m.paused, m.paused_reason, m.dynamic)
            for m in st.sim.members("general-line")}  # fmt: skip


async def test_the_sync_pauses_logged_out_static_members_and_never_removes_them(
    tmp_path: Path,
) -> None:
    with capture_logs() as logs:
        async with routing_stack(tmp_path, static_settings("PJSIP/1002")) as st:
            want_out = {"PJSIP/1002": (10, True, PAUSE_STATIC_LOGGED_OUT, False)}
            await wait_until(lambda: general_line(st) == want_out, what="paused")
            await st.operators.login("op1002")
            await wait_until(lambda: general_line(st) == {"PJSIP/1002": (10, False, "", False)},
                             what="unpaused at login")  # fmt: skip
            await st.operators.logout("op1002")
            await wait_until(lambda: general_line(st) == want_out, what="paused at logout")
            await wait_until(lambda: not st.membership.applying, what="replies in")
    actions = [(e["action"], e["queue"]) for e in logs if e["event"] == "membership_action"
               and e["interface"] == "PJSIP/1002" and e["queue"] == "general-line"]
    # no Add (it is there) and no Remove (it cannot go): pause, unpause, pause
    assert actions == [("SetPause", "general-line")] * 3
    assert not [e for e in logs if e["event"] in ("membership_static_member",
                                                  "membership_action_failed")]  # fmt: skip

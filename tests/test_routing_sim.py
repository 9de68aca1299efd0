"""The simulator's queue rules behave like app_queue's (queuerules.conf penaltychange)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ccrouter.sim import PbxSimulator, SimCaller, SimOperator
from ccrouter.sim.rules import PenaltyChange, apply_change, parse_conf_sections, parse_queuerules
from ccrouter.sim.testing import ScriptedAgi, route_to

RULES = """
[general]
; realtime_rules = no
[widen]
penaltychange => 60,10,5 ; absolute max and min
penaltychange => 30,+3   ; relative max, min unchanged
penaltychange => 75,,7
"""


def test_parse_sorts_by_time_and_reads_relative_and_absolute() -> None:
    assert parse_queuerules(RULES) == {"widen": [
        PenaltyChange(30, 3, True, 0, True),
        PenaltyChange(60, 10, False, 5, False),
        PenaltyChange(75, 0, True, 7, False),
    ]}  # fmt: skip
    with pytest.raises(ValueError, match="seconds first"):
        parse_queuerules("[r]\npenaltychange => soon,5\n")


def test_rules_act_only_on_limits_the_dialplan_set() -> None:
    rel, absolute = PenaltyChange(30, -50, True, 0, True), PenaltyChange(60, 10, False, 5, False)
    assert apply_change(20, None, rel) == (0, None)  # clamped at 0; min was not set
    assert apply_change(None, 2, absolute) == (None, 5)  # max was not set: left alone
    assert apply_change(None, None, absolute) == (None, None)


def test_conf_sections_skip_general() -> None:
    text = "[general]\npersistentmembers = no\n[q1]\nstrategy = ringall ; c\n\n[q2]\ntimeout=5\n"
    assert parse_conf_sections(text) == [("q1", {"strategy": "ringall"}), ("q2", {"timeout": "5"})]


@pytest.fixture
async def sim_for() -> AsyncIterator[object]:
    made: list[tuple[PbxSimulator, ScriptedAgi]] = []

    async def make(extra: tuple[tuple[str, str], ...]) -> PbxSimulator:
        agi = ScriptedAgi(route_to("q", (("CCROUTER_QUEUE_TIMEOUT", "300"), *extra)))
        sim = PbxSimulator(agi_port=await agi.start(), time_scale=50.0, noise=False)
        await sim.start()
        sim.load_queues("[q]\nstrategy = ringall\ntimeout = 15\ndefaultrule = widen\n")
        sim.load_queuerules("[widen]\npenaltychange => 30,50\n")
        sim.add_operator(SimOperator("PJSIP/1", answer_after_s=1, talk_time_s=2))
        sim.add_member("q", "PJSIP/1", penalty=40)
        made.append((sim, agi))
        return sim

    yield make
    for sim, agi in made:
        await sim.close()
        await agi.close()


async def test_max_penalty_widens_when_the_rule_time_comes(sim_for: object) -> None:
    sim = await sim_for((("QUEUE_MAX_PENALTY", "20"),))  # type: ignore[operator]
    call = sim.place_call(SimCaller("79001"))
    assert await asyncio.wait_for(call.finished, 5) == "answered"
    assert 30 <= call.hold_time <= 32  # not before the rule (penalty 40 > 20)
    assert call.variables["QUEUE_MAX_PENALTY"] == "50"  # the channel variable follows


async def test_rules_do_not_act_without_a_max_penalty(sim_for: object) -> None:
    sim = await sim_for(())  # type: ignore[operator]
    call = sim.place_call(SimCaller("79002"))
    assert await asyncio.wait_for(call.finished, 5) == "answered"
    assert call.hold_time <= 2 and "QUEUE_MAX_PENALTY" not in call.variables

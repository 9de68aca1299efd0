"""decide(): targets, unstaffed overflow, priorities, expansion, last agent; the hook."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from structlog.testing import capture_logs

from ccrouter.callbacks.config import callback_settings
from ccrouter.config import load_settings
from ccrouter.routing.hook import HookCall, RouteHook, load_hook
from ccrouter.routing.model.decide import Floor, Requirements, RouteDecision, decide
from ccrouter.routing.table import routing_table
from tests.conftest import ROOT

SETTINGS = load_settings(ROOT / "config" / "ccrouter.yaml", {})
TABLE = routing_table(SETTINGS)
ALL = frozenset({t.queue_name for t in SETTINGS.targets})


def test_plain_decision_keeps_the_skeleton_behaviour() -> None:
    d = decide(Requirements(dialled="712000100"), TABLE)
    assert (d.target, d.queue, d.language, d.priority) == ("wallet-ru", "wallet-ru", "ru", 0)
    assert d.max_penalty == 20 and d.overflow_queue == "general-line"
    assert d.overflow_max_penalty == 99  # general's own first step (min level 1)
    d = decide(Requirements(product="terminal", language="tg"), TABLE)
    assert d.target == "terminal-ru" and d.notes  # no terminal-tg


def test_overflow_to_a_target_starts_at_its_first_step() -> None:
    d = decide(Requirements(product="wallet", language="uz"), TABLE, Floor(staffed=ALL))
    assert (d.queue, d.overflow_queue, d.overflow_max_penalty) == ("wallet-uz", "wallet-ru", 20)
    d = decide(Requirements(product="terminal"), TABLE, Floor(staffed=ALL))
    assert d.voicemail == "2400@ccrouter" and d.overflow_queue is None


def test_unstaffed_target_overflows_at_once_following_the_chain() -> None:
    staffed = ALL - {"wallet-uz", "wallet-ru"}
    d = decide(Requirements(product="wallet", language="uz"), TABLE, Floor(staffed=staffed))
    assert d.escalation == ("wallet-uz", "wallet-ru") and d.queue == "general-line"
    assert d.target == "wallet-ru" and d.max_penalty is None  # a plain queue: no ladder
    d = decide(Requirements(product="terminal", language="uz"), TABLE,
               Floor(staffed=ALL - {"terminal-uz"}))  # fmt: skip
    assert d.queue == "terminal-uz"  # when_unstaffed: false -> waits in its own queue
    d = decide(Requirements(product="terminal"), TABLE, Floor(staffed=frozenset()))
    assert d.queue == "" and d.voicemail == "2400@ccrouter"
    d = decide(Requirements(product="wallet"), TABLE, Floor(staffed=None))
    assert d.queue == "wallet-ru" and not d.escalation  # unknown staffing: no overflow


def test_priorities_take_the_highest_that_applies() -> None:
    p = SETTINGS.routing.priorities
    assert decide(Requirements(caller_num="998901112233"), TABLE).priority == p.vip
    assert decide(Requirements(repeat_of="0000017"), TABLE).priority == p.repeat_caller
    leg = callback_settings(SETTINGS).queue_priority  # an originated leg carries its own
    assert decide(Requirements(priority=leg), TABLE).priority == leg
    assert decide(Requirements(priority=99, caller_num="998901112233"), TABLE).priority == 99


def test_last_agent_only_when_offered_and_queued() -> None:
    floor = Floor(staffed=ALL, last_agent_queue="ccrouter-op-op1002")
    d = decide(Requirements(product="wallet", repeat_of="0000017"), TABLE, floor)
    assert (d.last_agent_queue, d.last_agent_ring_s) == ("ccrouter-op-op1002", 12)
    assert d.repeat_of == "0000017"
    vm = decide(Requirements(product="terminal"), TABLE,
                replace(floor, staffed=frozenset()))  # fmt: skip
    assert vm.last_agent_queue is None


def call(builtin: RouteDecision) -> HookCall:
    return HookCall("1.1", "PJSIP/t-1", "7900", "", "712000100", Requirements(), builtin, ALL)


BUILTIN = decide(Requirements(dialled="712000100"), TABLE)


async def test_hook_decides_or_falls_back_with_a_logged_error() -> None:
    async def vip(c: HookCall) -> RouteDecision | None:
        return replace(c.builtin, queue="general-line", priority=50)

    async def slow(c: HookCall) -> RouteDecision | None:
        await asyncio.sleep(1)
        return None

    async def broken(c: HookCall) -> RouteDecision | None:
        raise KeyError("crm down")

    def blocking(c: HookCall) -> RouteDecision | None:
        time.sleep(0.001)
        return replace(c.builtin, queue="no-such-queue")

    d = await RouteHook(vip, 0.2, ALL).decide(call(BUILTIN))
    assert (d.queue, d.priority, d.source) == ("general-line", 50, "hook")
    with capture_logs() as logs:
        for fn in (slow, broken, blocking):
            assert await RouteHook(fn, 0.05, ALL).decide(call(BUILTIN)) == BUILTIN
    assert [e["event"] for e in logs] == ["route_hook_timeout", "route_hook_failed",
                                          "route_hook_bad_result"]  # fmt: skip


def test_load_hook_names_what_is_wrong() -> None:
    import pytest

    from ccrouter.routing.hook import HookLoadError

    assert load_hook("os.path:join") is __import__("os").path.join
    with pytest.raises(HookLoadError, match="cannot import nosuch"):
        load_hook("nosuch.module:route")
    with pytest.raises(HookLoadError, match="has no function 'nothing'"):
        load_hook("os.path:nothing")


def test_callback_overflow_offers_after_timeout_and_at_once_when_unstaffed() -> None:
    from ccrouter.dialplan import VAR_OVERFLOW_CALLBACK
    from ccrouter.routing.agi import routing_variables
    from ccrouter.routing.model.decide import OverflowSpec

    base = TABLE.by_name("wallet-ru")
    assert base is not None
    # the callbacks feature's overflow step (its `overflow: {callback: true}` flag)
    offer = OverflowSpec("callback", "wallet-ru", variable=VAR_OVERFLOW_CALLBACK)
    spec = replace(base, overflow=offer)
    targets = {k: (spec if v.name == "wallet-ru" else v) for k, v in TABLE.targets.items()}
    table = replace(TABLE, targets=targets)
    d = decide(Requirements(product="wallet", language="ru"), table)
    step = d.feature_step and d.feature_step.dest
    assert (d.queue, step, d.overflow_queue, d.escalation) == ("wallet-ru", "wallet-ru", None, ())
    assert (VAR_OVERFLOW_CALLBACK, "wallet-ru") in routing_variables(d)
    d = decide(Requirements(product="wallet", language="ru"), table,
               Floor(staffed=ALL - {"wallet-ru"}))  # fmt: skip
    step = d.feature_step and d.feature_step.dest
    assert (d.queue, step, d.escalation) == ("", "wallet-ru", ("wallet-ru",))

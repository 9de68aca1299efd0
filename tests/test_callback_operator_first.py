"""Operator-first callbacks end to end: the simulator rings the operator, plays the whisper,
dials the customer and reports the outcome with UserEvent(CcrouterCallback), as the generated
`ccrouter-callback-operator` context does on Asterisk."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from ccrouter.callbacks.feature import install
from ccrouter.config import Settings
from ccrouter.dialplan import (
    CONTEXT_CALLBACK_OPERATOR,
    VAR_CALLBACK_OF,
    VAR_DIAL,
    VAR_DIAL_TIMEOUT,
    VAR_WHISPER,
)
from ccrouter.pbx import events as ev
from ccrouter.sim import SimCustomer
from tests.stack import Stack, stack, wait_until
from tests.test_callback_e2e import NUMBER, add_paused_operator, cb_settings, requests, service
from tests.test_callback_e2e import unpause as unpause_member

ORIGINAL = None  # a request from the CLI or a test: no original card


def settings(**kw: Any) -> Settings:
    return cb_settings(mode="operator_first", operator_ring_s=6, whisper="cb-whisper", **kw)


async def ask(st: Stack) -> int:
    added = await service(st).request(NUMBER, target="wallet-ru", language="ru",
                                      product="wallet", card=ORIGINAL)  # fmt: skip
    assert added is not None
    return int(added.id)


async def settled(st: Stack, state: str) -> None:
    async def done() -> bool:
        return any(r.state == state for r in await requests(st))

    for _ in range(400):
        if await done() and len(st.app.tracker.book) == 0 and service(st).in_flight() == 0:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"request never {state}: {await requests(st)}")


async def test_operator_hears_whisper_then_customer_is_connected(tmp_path: Path) -> None:
    seen: list[ev.UserEventRaised] = []
    async with stack(tmp_path, settings=settings(), features=[install]) as st:
        st.app.tracker.subscribe(
            lambda e: seen.append(e) if isinstance(e, ev.UserEventRaised) else None)
        add_paused_operator(st, "wallet-ru", "PJSIP/1001", "Dilnoza", answer_after_s=1,
                            talk_time_s=4)  # fmt: skip
        st.sim.add_customer(SimCustomer(NUMBER, answer_after_s=2))
        await ask(st)
        await asyncio.sleep(0.2)
        assert st.sim.originated == []  # nobody free: nobody rung
        await unpause_member(st, "PJSIP/1001")
        await settled(st, "done")
        (req,) = await requests(st)
        cards = {c["number"]: c for c in await st.cards()}
    (orig,) = st.sim.originated
    assert (orig.channel, orig.context, orig.asynchronous) == (
        "PJSIP/1001", CONTEXT_CALLBACK_OPERATOR, True)
    v = dict(orig.variables)
    assert v[VAR_DIAL] == f"PJSIP/{NUMBER}@trunk" and v[VAR_DIAL_TIMEOUT] == "10"
    assert v[VAR_WHISPER] == "cb-whisper" and v[VAR_CALLBACK_OF] == ""
    assert (req.state, req.reason, req.attempts) == ("done", "connected", 1)
    (event,) = seen
    assert event.uniqueid == orig.channel_id and event.get("DialStatus") == "ANSWER"
    (leg,) = [c for c in cards.values() if c["uniqueid"] == orig.channel_id]
    assert {k: leg[k] for k in ("kind", "callback_of", "outcome", "interface", "talk_s",
                                "caller_num", "state")} == {
        "kind": "callback", "callback_of": None, "outcome": "answered",
        "interface": "PJSIP/1001", "talk_s": 4, "caller_num": NUMBER, "state": "closed"}


@pytest.mark.parametrize(("answer", "result"), [("busy", "busy"), ("no_answer", "no_answer")])
async def test_customer_busy_or_not_answering_is_retried_then_fails(
    tmp_path: Path, answer: str, result: str
) -> None:
    async with stack(tmp_path, settings=settings(max_attempts=2), features=[install]) as st:
        add_paused_operator(st, "wallet-ru", "PJSIP/1001", "Dilnoza", answer_after_s=1)
        st.sim.add_customer(SimCustomer(NUMBER, answer=answer, answer_after_s=1))  # type: ignore[arg-type]
        await ask(st)
        await unpause_member(st, "PJSIP/1001")
        await settled(st, "failed")
        (req,) = await requests(st)
        attempts = await service(st)._store.attempts(req.id)
        cards = {c["uniqueid"]: c for c in await st.cards()}
    assert (req.attempts, req.reason) == (2, "attempts_used_up")
    assert [a.state for a in attempts] == [result, result]
    assert len(st.sim.originated) == 2
    assert {cards[o.channel_id]["outcome"] for o in st.sim.originated} == {result}


async def test_operator_who_does_not_answer_costs_no_attempt(tmp_path: Path) -> None:
    async with stack(tmp_path, settings=settings(), features=[install]) as st:
        add_paused_operator(st, "wallet-ru", "PJSIP/1001", "Absent", no_answer=True)
        add_paused_operator(st, "wallet-ru", "PJSIP/1002", "Dilnoza", answer_after_s=1,
                            talk_time_s=2, hangs_up=False)  # fmt: skip
        st.sim.add_customer(SimCustomer(NUMBER, answer_after_s=1))
        await ask(st)
        await unpause_member(st, "PJSIP/1001")
        await wait_until(lambda: len(st.sim.originated) == 1, what="absent operator rung")
        await unpause_member(st, "PJSIP/1002")  # free, but not counted twice
        await settled(st, "done")
        (req,) = await requests(st)
        cards = {c["uniqueid"]: c for c in await st.cards()}
    first, second = st.sim.originated
    assert (first.channel, second.channel) == ("PJSIP/1001", "PJSIP/1002")
    assert (req.state, req.attempts) == ("done", 1)  # the missed ring did not count
    assert cards[first.channel_id]["outcome"] == "operator_missed"
    assert cards[second.channel_id]["outcome"] == "answered"
    assert cards[second.channel_id]["interface"] == "PJSIP/1002"

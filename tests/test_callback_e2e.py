"""Callbacks end to end over real sockets: the simulator, ccrouter with the callback feature."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ccrouter.callbacks.feature import feature, install
from ccrouter.callbacks.service import CallbackService
from ccrouter.config import Settings
from ccrouter.dialplan import CONTEXT_CALLBACK, VAR_CALLBACK_OF, VAR_LANGUAGE, VAR_QUEUE_PRIO
from ccrouter.sim import SimCaller, SimCustomer, SimOperator
from tests.stack import Stack, example_settings, stack, wait_until

WALLET_DID = "712000100"
NUMBER = "79001110000"


def cb_settings(**callbacks: Any) -> Settings:
    s = example_settings()
    fast = {"pace_s": 0.0, "retry_backoff_s": [0.2], "poll_s": 0.3, "ring_timeout_s": 10,
            "max_live_wait_s": 600.0, **callbacks}  # fmt: skip
    return s.model_copy(update={"callbacks": s.callbacks.model_copy(update=fast)})


def service(st: Stack) -> CallbackService:
    svc = st.app.services["callbacks"]
    assert isinstance(svc, CallbackService)
    return svc


async def requests(st: Stack) -> list[Any]:
    return list(await service(st)._store.find())


async def unpause(st: Stack, iface: str) -> None:
    await st.app.ami.send({"Action": "QueuePause", "Interface": iface, "Paused": "false"})


def add_paused_operator(st: Stack, queue: str, iface: str, name: str, **kw: Any) -> None:
    st.sim.add_operator(SimOperator(interface=iface, **kw))
    st.sim.add_member(queue, iface, name=name, paused=True)


async def abandon(st: Stack, number: str = NUMBER, patience_s: float = 8) -> str:
    call = st.sim.place_call(SimCaller(number, "Ivan", dialled=WALLET_DID, patience_s=patience_s))
    assert await asyncio.wait_for(call.finished, 10) == "abandoned"
    return call.variables["CCROUTER_CARD"]


async def test_abandoned_caller_is_called_back_when_an_operator_frees(tmp_path: Path) -> None:
    async with stack(tmp_path, settings=cb_settings(), features=[install]) as st:
        add_paused_operator(st, "wallet-ru", "PJSIP/1001", "Dilnoza", answer_after_s=1,
                            talk_time_s=3)  # fmt: skip
        st.sim.add_customer(SimCustomer(NUMBER, answer_after_s=1))
        original = await abandon(st)
        await wait_until(lambda: service(st).backlog() == 1, what="request")
        assert st.sim.originated == []  # nobody free: nothing dialled
        await unpause(st, "PJSIP/1001")
        await wait_until(lambda: len(st.sim.customer_calls) == 1, what="customer answered")
        leg = st.sim.customer_calls[0]
        assert await asyncio.wait_for(leg.finished, 10) == "answered"
        await wait_until(lambda: len(st.app.tracker.book) == 0, what="cards closed")
        (req,) = await requests(st)
        cards = {c["number"]: c for c in await st.cards()}
    (orig,) = st.sim.originated
    assert orig.channel == f"PJSIP/{NUMBER}@trunk" and orig.asynchronous
    assert orig.context == CONTEXT_CALLBACK and orig.channel_id == leg.uniqueid
    variables = dict(orig.variables)
    assert variables[VAR_QUEUE_PRIO] == "10" and variables[VAR_LANGUAGE] == "ru"
    assert variables[VAR_CALLBACK_OF] == original
    assert (req.state, req.attempts, req.card, req.target) == ("done", 1, original, "wallet-ru")
    assert len(cards) == 2
    first, second = cards[original], cards[leg.variables["CCROUTER_CARD"]]
    assert (first["outcome"], first["callback_status"], first["callback_reason"]) == (
        "abandoned", "done", "connected")
    assert {k: second[k] for k in ("kind", "callback_of", "outcome", "operator", "queue",
                                   "caller_num", "language", "product", "state")} == {
        "kind": "callback", "callback_of": original, "outcome": "answered",
        "operator": "Dilnoza", "queue": "wallet-ru", "caller_num": NUMBER, "language": "ru",
        "product": "wallet", "state": "closed"}  # fmt: skip
    assert second["uniqueid"] == leg.uniqueid and second["talk_s"] == 3


async def test_short_abandon_and_withheld_number_get_no_request(tmp_path: Path) -> None:
    async with stack(tmp_path, settings=cb_settings(), features=[install]) as st:
        short = await abandon(st, NUMBER, patience_s=3)
        hidden = await abandon(st, "anonymous", patience_s=8)
        await wait_until(lambda: len(st.app.tracker.book) == 0, what="cards closed")
        await asyncio.sleep(0.2)
        assert await requests(st) == []
        cards = {c["number"]: c for c in await st.cards()}
    assert (cards[short]["callback_status"], cards[short]["callback_reason"]) == (
        "none", "short_abandon")
    assert cards[hidden]["callback_reason"] == "withheld"
    assert st.sim.originated == []


async def test_two_abandons_from_one_number_make_one_request(tmp_path: Path) -> None:
    async with stack(tmp_path, settings=cb_settings(), features=[install]) as st:
        first = await abandon(st)
        await wait_until(lambda: service(st).backlog() == 1, what="request")
        (before,) = await requests(st)
        second = await abandon(st)
        await wait_until(lambda: len(st.app.tracker.book) == 0, what="cards closed")
        for _ in range(100):  # the merge is done by the service's task
            if (await st.card(second))["callback_status"] == "merged":
                break
            await asyncio.sleep(0.02)
        (req,) = await requests(st)
        cards = {c["number"]: c for c in await st.cards()}
    assert (req.id, req.abandons, req.card, req.place_at) == (before.id, 2, first,
                                                              before.place_at)
    assert cards[second]["callback_status"] == "merged"
    assert cards[second]["callback_reason"] == f"request {req.id}"


async def test_caller_who_gets_through_on_their_own_is_not_called_back(tmp_path: Path) -> None:
    async with stack(tmp_path, settings=cb_settings(), features=[install]) as st:
        add_paused_operator(st, "wallet-ru", "PJSIP/1001", "Dilnoza", talk_time_s=2)
        st.sim.add_operator(SimOperator("PJSIP/1004", answer_after_s=1, talk_time_s=2))
        st.sim.add_member("terminal-ru", "PJSIP/1004", name="Sergey")
        st.sim.add_customer(SimCustomer(NUMBER))
        original = await abandon(st)
        await wait_until(lambda: service(st).backlog() == 1, what="request")
        again = st.sim.place_call(SimCaller(NUMBER, "Ivan", dialled="712000200"))  # terminal
        assert await asyncio.wait_for(again.finished, 10) == "answered"
        await wait_until(lambda: service(st).backlog() == 0, what="request cancelled")
        await unpause(st, "PJSIP/1001")
        await asyncio.sleep(0.5)  # a free wallet operator now: still nothing to dial
        (req,) = await requests(st)
        card = await st.card(original)
    assert (req.state, req.reason, req.attempts) == ("cancelled", "caller_got_through", 0)
    assert (card["callback_status"], card["callback_reason"]) == (
        "cancelled", "caller_got_through")
    assert st.sim.originated == []


async def test_never_more_callbacks_in_flight_than_free_operators(tmp_path: Path) -> None:
    async with stack(tmp_path, settings=cb_settings(ring_timeout_s=60), features=[install]) as st:
        for i in range(3):
            add_paused_operator(st, "wallet-ru", f"PJSIP/100{i}", f"Op{i}", talk_time_s=2)
        svc = service(st)
        for i in range(10):
            number = f"7900222000{i}"
            st.sim.add_customer(SimCustomer(number, answer_after_s=30))  # rings a while
            await svc.request(number, target="wallet-ru", place_at=1000.0 + i)
        for i in range(3):
            await unpause(st, f"PJSIP/100{i}")
        await wait_until(lambda: len(st.sim.originated) == 3, what="three dialled")
        peak = 0
        for _ in range(40):  # 1 s: the customers are still ringing
            peak = max(peak, svc.in_flight(), len(st.sim.originated))
            await asyncio.sleep(0.025)
        assert peak == 3
        dialled = [o.channel for o in st.sim.originated]
    # served in the order of their place (the original join time)
    assert dialled == [f"PJSIP/7900222000{i}@trunk" for i in range(3)]


async def test_no_answer_is_retried_then_the_request_fails(tmp_path: Path) -> None:
    settings = cb_settings(max_attempts=3, ring_timeout_s=5)
    async with stack(tmp_path, settings=settings, features=[install]) as st:
        st.sim.add_operator(SimOperator("PJSIP/1001"))
        st.sim.add_member("wallet-ru", "PJSIP/1001", name="Dilnoza", paused=True)
        st.sim.add_customer(SimCustomer(NUMBER, answer="no_answer"))
        original = await abandon(st)
        await unpause(st, "PJSIP/1001")
        await wait_until(lambda: len(st.sim.originated) == 3, timeout=8, what="three attempts")
        svc = service(st)
        await wait_until(lambda: svc.in_flight() == 0 and svc.backlog() == 0, what="failed")
        await asyncio.sleep(0.5)
        (req,) = await requests(st)
        attempts = await svc._store.attempts(req.id)
        await wait_until(lambda: len(st.app.tracker.book) == 0, what="cards closed")
        cards = await st.cards()
    assert len(st.sim.originated) == 3
    assert (req.state, req.reason, req.attempts) == ("failed", "attempts_used_up", 3)
    assert [a.state for a in attempts] == ["no_answer"] * 3
    legs = [c for c in cards if c["kind"] == "callback"]
    assert [(c["callback_of"], c["outcome"], c["state"]) for c in legs] == [
        (original, "no_answer", "closed")] * 3
    (first,) = [c for c in cards if c["number"] == original]
    assert (first["callback_status"], first["callback_reason"]) == ("failed", "attempts_used_up")


class Switch:
    def __init__(self) -> None:
        self.open = False

    def is_open(self, target: str, at: float) -> bool:
        return self.open


async def test_out_of_hours_request_waits_for_opening(tmp_path: Path) -> None:
    hours = Switch()
    async with stack(tmp_path, settings=cb_settings(), features=[feature(line_hours=hours)]) as st:
        add_operator_free = SimOperator("PJSIP/1001", answer_after_s=1, talk_time_s=2)
        st.sim.add_operator(add_operator_free)
        st.sim.add_member("wallet-ru", "PJSIP/1001", name="Dilnoza", paused=True)
        st.sim.add_customer(SimCustomer(NUMBER, answer_after_s=1))
        await abandon(st)
        await unpause(st, "PJSIP/1001")
        await asyncio.sleep(0.8)  # free operator, pending request, but the line is closed
        assert st.sim.originated == [] and service(st).backlog() == 1
        hours.open = True  # picked up at the next look (poll_s)
        await wait_until(lambda: len(st.sim.originated) == 1, what="dialled after opening")

"""Callbacks end to end over real sockets: the simulator, ccrouter with the callback feature."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ccrouter.callbacks import install
from ccrouter.config import Settings
from ccrouter.dialplan import CONTEXT_CALLBACK, VAR_CALLBACK_OF, VAR_LANGUAGE, VAR_QUEUE_PRIO
from ccrouter.services.callbacks import CallbackService
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
    svc = st.app.callbacks
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

"""The screen pop under a burst of calls: it must not flush the card writer per pop (that
defeats the group commit), and the popped card must still be the call's."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ccrouter.config import Operator
from ccrouter.sim import SimCaller
from ccrouter.web.auth import mask_number
from tests.stack import add_operator, wait_until
from tests.test_web_api import WALLET_DID
from tests.web_stack import web_settings, web_stack

N = 16


async def test_a_burst_of_pops_keeps_the_group_commit(tmp_path: Path) -> None:
    base = web_settings()
    extra = [Operator(id=f"op2{i:03}", name=f"Burst {i}", interface=f"PJSIP/2{i:03}")
             for i in range(N)]
    db = base.database.model_copy(update={"commit_window_ms": 300})
    settings = web_settings(operators=[*base.operators, *extra], database=db)
    async with web_stack(tmp_path, settings) as ws:
        for op in extra:
            add_operator(ws.st.sim, "wallet-ru", op.interface, op.name, answer_after_s=1,
                         talk_time_s=4)
        assert ws.web.ctx is not None
        hub = ws.web.ctx.hub
        pops: list[tuple[str, Any]] = []
        publish = hub.publish

        def counting(topic: str, event: str, data: Any, *, retain: bool = False) -> None:
            if event == "pop":
                pops.append((topic, data))
            publish(topic, event, data, retain=retain)

        hub.publish = counting  # type: ignore[method-assign]
        writer = ws.st.app.writer
        before = writer.stats.commits
        calls = []
        for i in range(N):  # a steady stream: every pop finds new writes waiting
            calls.append(ws.st.sim.place_call(SimCaller(f"7900555{i:04}", dialled=WALLET_DID)))
            await asyncio.sleep(0.03)
        results = await asyncio.wait_for(asyncio.gather(*(c.finished for c in calls)), 20)
        assert results == ["answered"] * N
        await wait_until(lambda: len(pops) >= 2 * N, what="a ringing and a connected pop each")
        commits = writer.stats.commits - before
        print(f"{len(pops)} pops, {commits} commits")
        assert commits * 4 <= len(pops), f"{commits} commits for {len(pops)} pops"
        by_card = {c.variables["CCROUTER_CARD"]: c for c in calls}
        for topic, pop in pops:
            card = pop["card"]
            assert card["number"] in by_card and card["queue"] == "wallet-ru"
            assert card["caller_num"] == mask_number(by_card[card["number"]].caller.number)
            assert card["kind"] in ("inbound", None) and topic.startswith("operator:op2")
        connected = [p for _, p in pops if p["phase"] == "connected"]
        assert {p["card"]["number"] for p in connected} == set(by_card)
        assert all(p["card"]["interface"].startswith("PJSIP/2") for p in connected)

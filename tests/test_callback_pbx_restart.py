"""Callbacks across an Asterisk restart (issue 11 item 3), over real sockets.

`core restart now` hangs up every channel (a queued caller's QueueCallerAbandon/Leave, Hangup),
refuses every action with `Asterisk is shutting down`, then announces `Shutdown`; the new
Asterisk boots before it is `FullyBooted`. The caller cut off in the queue keeps a callback
request; the Originate refused by the stopping PBX does not use an attempt (released, reason
`pbx_restart`), and the callback is dialled once, after `FullyBooted`, not before.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from ccrouter.callbacks.feature import install
from ccrouter.sim import SimCaller, SimCustomer
from ccrouter.sim.originate_request import OriginateRequest
from tests.stack import add_operator, stack, wait_until
from tests.test_callback_e2e import NUMBER, WALLET_DID, cb_settings, service


async def test_a_caller_cut_off_by_a_restart_is_called_back_once_after_fully_booted(
    tmp_path: Path,
) -> None:
    async with stack(tmp_path, settings=cb_settings(), features=[install]) as st:
        add_operator(st.sim, "wallet-ru", "PJSIP/1001", "Dilnoza", answer_after_s=0.5,
                     talk_time_s=600)  # fmt: skip
        st.sim.add_customer(SimCustomer(NUMBER, answer_after_s=1))
        loop = asyncio.get_running_loop()
        dialled: list[float] = []
        originate = st.sim._actions.originate

        async def spy(req: OriginateRequest) -> bool:
            dialled.append(loop.time())
            return await originate(req)

        st.sim._actions.originate = spy
        talking = st.sim.place_call(SimCaller("79005550001", dialled=WALLET_DID, patience_s=900))
        book = st.app.tracker.book
        await wait_until(lambda: any(v.answered for v in book.views()), what="one talking")
        waiting = st.sim.place_call(SimCaller(NUMBER, "Ivan", dialled=WALLET_DID, patience_s=900))
        await asyncio.sleep(0.5)  # 10 s of simulated wait: not a short abandon
        restart = asyncio.create_task(st.sim.restart(graceful_s=0.5, boot_s=1.0))
        assert await asyncio.wait_for(waiting.finished, 5) == "abandoned"
        assert await asyncio.wait_for(talking.finished, 5) != "lost"
        svc = service(st)
        await wait_until(lambda: any(r.reason == "pbx_restart" for r in svc._pending.values()),
                         3, "the refused Originate released")  # fmt: skip
        (pending,) = svc._pending.values()
        assert (pending.attempts, pending.number) == (0, NUMBER)
        await restart
        await wait_until(lambda: st.sim.booted_at is not None, 3, "FullyBooted")
        await wait_until(lambda: len(st.sim.customer_calls) == 1, 5, "called back")
        await wait_until(lambda: not svc._pending and not svc.in_flight(), 5, "request done")
        (req,) = await svc._store.find()
        attempts = await svc._store.attempts(req.id)
    assert st.sim.booted_at is not None
    assert len(dialled) == 1 and dialled[0] >= st.sim.booted_at, "dialled once, after boot"
    assert (req.state, req.attempts, req.reason) == ("done", 1, "connected")
    assert [a.n for a in attempts] == [1]  # the refused one is gone: it did not count

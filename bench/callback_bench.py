"""Callback dispatch latency: "operator free" (the AMI event) -> the Originate action sent.

    python -m bench.callback_bench [N]

ccrouter (the real `App` with the callback feature, SQLite in a temporary directory) runs
against the PBX simulator over real sockets. N callback requests wait; one operator serves them
one after the other. Each time the operator hangs up, the simulator emits QueueMemberStatus
(Status 1) — t0 — and ccrouter claims the next request in the database (a committed
conditional UPDATE + the attempt row), opens the leg's card and sends `Originate` (Async) —
t1 is when the simulator has read that action. The first dial (the operator was free at
start-up) is not counted. Prints p50/p99/max of t1 - t0 in milliseconds.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ccrouter.app import App
from ccrouter.callbacks.feature import install
from ccrouter.callbacks.model import Kind
from ccrouter.callbacks.store import CallbackStore
from ccrouter.config import load_settings
from ccrouter.db.engine import make_engine
from ccrouter.db.migrate import migrate
from ccrouter.demo import demo_settings
from ccrouter.logs import configure_logging
from ccrouter.sim import PbxSimulator, SimCustomer, SimOperator

ROOT = Path(__file__).resolve().parents[1]
OPERATOR = "PJSIP/1001"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def measure(n: int = 1000, time_scale: float = 1000.0) -> dict[str, Any]:
    base = load_settings(ROOT / "config" / "ccrouter.yaml", environ={})
    cbs = base.callbacks.model_copy(update={"pace_s": 0.0, "prompt": "", "poll_s": 60.0})
    base = base.model_copy(update={
        "callbacks": cbs, "log": base.log.model_copy(update={"level": "error"})})  # fmt: skip
    sim = PbxSimulator(agi_port=0, username=base.ami.username, secret="demo-secret",
                       time_scale=time_scale, noise=False)  # fmt: skip
    await sim.start()
    for t in base.targets:
        sim.add_queue(t.queue_name, timeout=15)
    sim.add_operator(SimOperator(OPERATOR, answer_after_s=0.2, talk_time_s=1.0))
    sim.add_member("wallet-ru", OPERATOR, name="Bench")
    numbers = [f"7900{i:07d}" for i in range(n)]
    for number in numbers:
        sim.add_customer(SimCustomer(number, answer_after_s=0.2))
    freed: list[float] = []
    sent: list[float] = []
    core, actions = sim._core, sim._actions  # instrumentation only: the bench reads the sim
    engine_hook = core.on_member_free

    def member_free(iface: str) -> None:
        freed.append(time.perf_counter())
        engine_hook(iface)

    originate = actions.originate

    all_sent = asyncio.Event()

    async def timed(req: Any) -> bool:
        sent.append(time.perf_counter())
        if len(sent) >= n:
            all_sent.set()
        return await originate(req)

    core.on_member_free = member_free
    actions.originate = timed
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(url)
        await migrate(engine)
        store = CallbackStore(engine)
        now = time.time()
        for i, number in enumerate(numbers):
            await store.add(number=number, kind=Kind.CALLBACK, target="wallet-ru", now=now,
                            place_at=now + i)  # fmt: skip
        await engine.dispose()
        configure_logging(base.log)
        app = App(demo_settings(base, sim.ami_port, url), features=[install])
        await app.start()
        sim.agi_port = app.agi_address[1]
        started = time.perf_counter()
        try:
            async with asyncio.timeout(60 + n * 0.1):
                await all_sent.wait()
        finally:
            elapsed = time.perf_counter() - started
            await app.stop()
            await sim.close()
    latencies = []
    for t1 in sent[1:]:
        before = [t0 for t0 in freed if t0 <= t1]
        if before:
            latencies.append((t1 - before[-1]) * 1000.0)
    return {
        "callbacks": len(sent), "samples": len(latencies), "elapsed_s": elapsed,
        "p50_ms": percentile(latencies, 0.50), "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies), "mean_ms": statistics.fmean(latencies),
    }  # fmt: skip


def main(n: int = 1000) -> dict[str, Any]:
    from ccrouter.app import run

    result: dict[str, Any] = {}

    async def go() -> int:
        result.update(await measure(n))
        return 0

    run(go())
    print(f"callback dispatch, operator free -> Originate sent ({result['samples']} callbacks, "
          f"{result['elapsed_s']:.1f} s): p50 {result['p50_ms']:.2f} ms, "
          f"p99 {result['p99_ms']:.2f} ms, max {result['max_ms']:.2f} ms")  # fmt: skip
    return result


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)

"""End to end: the PBX simulator (this process) drives a real ccrouter daemon (a subprocess).

`rate_ramp`: Poisson calls (IVR skipped: the `route` script, Queue(), an operator answers, talks,
hangs up, the card is written) at rising rates; for each step the achieved rate, how many calls
ended answered, the daemon's routing-decision p99 (`decide`, its own clock), the whole `route`
session p50/p99 (which includes every round trip to the simulator, so on 2 cores it measures the
simulator's load too) and whether the card writer kept up. The highest step whose decision p99
stays under the bound and whose caller's `route` session p99 stays under SESSION_BOUND_MS, with
every call answered, is the sustained rate (the p99 of a step is the worst p99 of the daemon's
half-second reports: conservative); one more step halfway between it and the next step up,
which failed, tells the knee to half a step.
`memory`: the daemon's RSS with N operators and M live calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.proc import SIM_SECRET, Daemon, write_config
from bench.progress import Progress
from bench.stats import cpu_s, cpu_speed_ms, machine_busy_s, rss_mb
from ccrouter.routing.model.skills import personal_queue
from ccrouter.sim import PbxSimulator, SimCaller, SimOperator

DIDS = ("712000100", "712000200", "712000300")  # wallet, terminal, general (example config)
QUEUES = ("wallet-ru", "wallet-uz", "wallet-tg", "terminal-ru", "terminal-uz", "general-line")


@dataclass
class Harness:
    sim: PbxSimulator
    daemon: Daemon
    lines: list[dict[str, Any]]

    def since(self, t0: float) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("at", 0.0) >= t0]


@contextlib.asynccontextmanager
async def harness(
    tmp: Path, *, time_scale: float, operators_per_queue: int, interval: float = 0.5,
    config_overrides: dict[str, Any] | None = None, noise: bool = False,
    extra_queues: Sequence[str] = (), daemon_args: Sequence[str] = (),
) -> AsyncIterator[Harness]:
    """The simulator with staffed queues (and `extra_queues`, empty) and the instrumented
    daemon, connected."""
    settle_simulator_heap()
    sim = PbxSimulator(agi_port=0, secret=SIM_SECRET, time_scale=time_scale, noise=noise, seed=1)
    await sim.start()
    for q in QUEUES:
        sim.add_queue(q, strategy="rrmemory", timeout=15)
    for q in extra_queues:
        sim.add_queue(q, timeout=15)
    for qi, q in enumerate(QUEUES):
        for i in range(operators_per_queue):
            iface = f"PJSIP/{10000 + qi * 1000 + i}"
            sim.add_operator(SimOperator(iface, answer_after_s=0.5, talk_time_s=2.0))
            sim.add_member(q, iface, name=f"Op {q} {i}")
    overrides = {"log": {"level": "error"}, **(config_overrides or {})}
    cfg = write_config(tmp, ami_port=sim.ami_port, db_path=tmp / "cards.db",
                       overrides=overrides)  # fmt: skip
    lines: list[dict[str, Any]] = []
    try:
        args = ("--interval", str(interval), *daemon_args)
        async with Daemon.start(cfg, module=("bench.daemon",), args=args) as daemon:
            try:
                ready = await asyncio.wait_for(daemon.stdout.get(), 60)
            except TimeoutError:  # say why: the daemon's last words (a config error, ...)
                last = [ln.get("line") or ln.get("event") for ln in daemon.logs[-3:]]
                raise RuntimeError(f"the daemon did not start within 60 s: {last}") from None
            sim.agi_port = int(ready["agi_port"])

            async def collect() -> None:
                while True:
                    line = await daemon.stdout.get()
                    line["at"] = time.monotonic()
                    lines.append(line)

            collector = asyncio.create_task(collect())
            try:
                async with asyncio.timeout(30):
                    while not (lines and lines[-1].get("ami_connected")):  # noqa: ASYNC110 - polls a subprocess's reports
                        await asyncio.sleep(0.05)
                yield Harness(sim, daemon, lines)
            finally:
                collector.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await collector
    finally:
        await sim.close()


def callers(seed: int = 5) -> Any:
    rng = random.Random(seed)

    def make(i: int) -> SimCaller:
        return SimCaller(f"79{rng.randrange(10**9):09d}", dialled=DIDS[i % len(DIDS)],
                         patience_s=600)  # fmt: skip

    return make


@contextlib.contextmanager
def simulator_without_gc() -> Iterator[None]:
    """Keep the simulator's (this process's) cyclic GC out of a step: it paused the simulator
    for 20-110 ms (a real Asterisk, in C, has no such pauses), and every AGI session then in
    flight waited for it. Collected between steps, what survives frozen (`gc.freeze`) so the
    next collection does not walk it again; ccrouter's own GC (the daemon) is untouched."""
    settle_simulator_heap()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def settle_simulator_heap() -> None:
    """Before a harness starts: collect and freeze what this process holds already. In a full
    `make bench` the sections before `e2e` left ~300 MB in it (the simulator's RSS 330-370 MB
    against 60-110 MB in a section run alone), and every collection between two steps walked
    it all with the daemon connected: with 1.5 M such objects the simulator stopped for up to
    0.8 s, and the caller's p99 of the next steps (1 300 / 1 600 calls/s) was 77 ms against 9
    without them; frozen first, 21 ms at most and 32 ms (2026-12-03)."""
    gc.collect()
    gc.freeze()


async def rate_step(h: Harness, rate: float, seconds: float) -> dict[str, Any]:
    with simulator_without_gc():
        return await _rate_step(h, rate, seconds)


async def _rate_step(h: Harness, rate: float, seconds: float) -> dict[str, Any]:
    cpu0 = (cpu_s(h.daemon.proc.pid), cpu_s(), machine_busy_s())
    t0 = time.monotonic()
    written0 = h.lines[-1]["cards_written"] if h.lines else 0
    calls = await h.sim.run_load(rate, seconds, callers(int(rate)), wait=False)
    placed_in = time.monotonic() - t0
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(c.finished for c in calls)), 30)
    await asyncio.sleep(1.0)  # one more report: the cards of the last calls
    elapsed = time.monotonic() - t0
    d_cpu, s_cpu = cpu_s(h.daemon.proc.pid) - cpu0[0], cpu_s() - cpu0[1]
    others = machine_busy_s() - cpu0[2] - d_cpu - s_cpu
    lines = h.since(t0)
    answered = sum(1 for c in calls if c.outcome == "answered")
    route_p99 = max((ln["route"]["p99_ms"] for ln in lines if ln["route"]["n"]), default=0.0)
    route_p50 = sorted(ln["route"]["p50_ms"] for ln in lines if ln["route"]["n"])
    decide_p99 = max((ln["decide"]["p99_ms"] for ln in lines if ln["decide"]["n"]), default=0.0)
    return {
        "offered_per_s": rate,
        "placed": len(calls),
        "achieved_per_s": round(len(calls) / placed_in, 1),
        "answered": answered,
        "route_p50_ms": route_p50[len(route_p50) // 2] if route_p50 else 0.0,
        "route_p99_ms": route_p99,
        "decide_p99_ms": decide_p99,
        "cards_written": (lines[-1]["cards_written"] - written0) if lines else 0,
        "writer_queue_end": lines[-1]["writer_queue"] if lines else -1,
        "lag_max_ms": max((ln["lag_max_ms"] for ln in lines), default=0.0),
        "gc_max_ms": max((ln.get("gc_max_ms", 0.0) for ln in lines), default=0.0),
        # the daemon's time in its cyclic GC per generation, per call placed
        "gc_us_per_call": [round(sum(ln["gc_ms"][g] for ln in lines if "gc_ms" in ln) * 1000
                                 / max(1, len(calls)), 1) for g in range(3)],
        "daemon_rss_mb": lines[-1]["rss_mb"] if lines else 0.0,
        "sim_rss_mb": round(rss_mb(), 1),
        # CPU while the step's calls were placed and ran (their talk and wrap-up included)
        "daemon_cpu_cores": round(d_cpu / elapsed, 2),
        "daemon_cpu_us_per_call": round(d_cpu / max(1, len(calls)) * 1e6),
        "sim_cpu_cores": round(s_cpu / elapsed, 2),
        "sim_cpu_us_per_call": round(s_cpu / max(1, len(calls)) * 1e6),
        # the rest of the machine meanwhile (PostgreSQL's server when the daemon is on it, and
        # whatever else runs here: on a shared machine, how far to trust the latencies)
        "other_cpu_cores": round(max(0.0, others) / elapsed, 2),
    }


SESSION_BOUND_MS = 50.0
"""A step is sustained only while the caller's `route` AGI session p99 (the simulator's side:
its dialplan reaching AGI() to AGI() returning, `bench.agi_trace`) stays under this too. The
decision bound alone does not see saturation: the decision is CPU time inside one callback,
while a loop that cannot keep up makes every session wait, first of all to be accepted (which
the daemon's own `route` time does not hold). With the ramp taken past 1 600 calls/s
(2026-12-03), every step up to 3 000 calls/s kept the decision p99 under 1.5 ms and answered
every call, while the daemon's `route` p99 climbed to 230 ms."""


async def rate_ramp(rates: Sequence[float], seconds: float = 3.0,
                    p99_bound_ms: float = 5.0, database_url: str | None = None,
                    session_bound_ms: float = SESSION_BOUND_MS) -> dict[str, Any]:  # fmt: skip
    """The ramp; the daemon on `database_url` (default: SQLite in a temporary directory)."""
    from bench.agi_trace import SimTrace

    steps: list[dict[str, Any]] = []
    overrides = {"database": {"url": database_url}} if database_url else None
    trace = SimTrace()
    with tempfile.TemporaryDirectory(prefix="ccrouter-bench-") as d, trace.installed():
        async with harness(Path(d), time_scale=50, operators_per_queue=60,
                           config_overrides=overrides) as h:  # fmt: skip

            async def run(rate: float) -> dict[str, Any]:
                trace.clear()
                speed = cpu_speed_ms()
                step = await rate_step(h, rate, seconds)
                step["caller_p99_ms"] = trace.caller_p99_ms()
                step["speed_ms"] = speed
                step["sustained"] = (
                    step["decide_p99_ms"] < p99_bound_ms and step["answered"] == step["placed"]
                    and step["achieved_per_s"] >= 0.9 * rate
                    and step["caller_p99_ms"] < session_bound_ms)  # fmt: skip
                return step

            for rate in rates:
                steps.append(await run(rate))
                if not steps[-1]["sustained"] and len(steps) >= 2 and not steps[-2]["sustained"]:
                    break  # two failed steps in a row: past the knee
            # The knee lies between the highest sustained step and the next one up, which
            # failed: one step halfway, so that the rate (and 80 % of it) is known to half a
            # step, not a whole one (PostgreSQL's passed 1 300 and failed 1 600, 2026-12-04).
            ok = [s["offered_per_s"] for s in steps if s["sustained"]]
            above = [s["offered_per_s"] for s in steps
                     if not s["sustained"] and ok and s["offered_per_s"] > max(ok)]  # fmt: skip
            if ok and above:
                middle = round((max(ok) + min(above)) / 2 / 50) * 50
                if max(ok) < middle < min(above):
                    steps.append({**await run(middle), "refined": True})
    best = max((s for s in steps if s["sustained"]), key=lambda s: s["achieved_per_s"],
               default=None)  # fmt: skip
    return {"steps": steps, "sustained_calls_per_s": best["achieved_per_s"] if best else 0.0,
            "p99_bound_ms": p99_bound_ms, "session_bound_ms": session_bound_ms}


def big_floor(n: int, seed: int = 11) -> list[dict[str, Any]]:
    """`n` operators with skills over the example's languages and products."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        skills = {lang: rng.choice((0, 40, 70, 100)) for lang in ("ru", "uz", "tg")}
        skills.update({p: rng.choice((0, 50, 80, 100)) for p in ("wallet", "terminal", "general")})
        skills["ru"] = max(skills["ru"], 40)
        out.append({"id": f"op{i:05d}", "name": f"Operator {i}", "interface": f"PJSIP/{20000 + i}",
                    "skills": skills, "logged_in": True})  # fmt: skip
    return out


async def _until(h: Harness, done: Callable[[dict[str, Any]], bool], limit_s: float) -> float:
    """Seconds until the daemon's latest report satisfies `done` (-1.0: not within limit_s)."""
    t0 = time.monotonic()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(limit_s):
            while not (h.lines and done(h.lines[-1])):  # noqa: ASYNC110 - polls reports
                await asyncio.sleep(0.2)
            return round(time.monotonic() - t0, 1)
    return -1.0


PRODUCTION_WATCHDOG = {"ping_interval_s": 10.0, "ping_timeout_s": 5.0, "action_timeout_s": 5.0}
"""The default AMI watchdog: the harness's 0.5 s one (for fault tests) turns a few busy
moments of a 5 000-operator daemon into reconnects, each one a resync of the whole floor."""


async def memory(operators: int = 5000, live_calls: int = 2000) -> dict[str, Any]:
    """Daemon RSS: idle with `operators` logged in (ccrouter puts them in the queues: it waits
    until Asterisk's members match, `membership_sync_s`), then with `live_calls` calls in
    progress (answered, talking for a long time; `live_after_s` after the first was placed)."""
    floor = big_floor(operators)
    personal = [personal_queue(op["id"]) for op in floor]  # in the generated queues.conf
    with tempfile.TemporaryDirectory(prefix="ccrouter-bench-") as d:
        async with harness(Path(d), time_scale=20, operators_per_queue=0, interval=0.5,
                           config_overrides={"operators": floor, "teams": [],
                                             "ami": PRODUCTION_WATCHDOG},
                           extra_queues=personal) as h:  # fmt: skip
            for op in floor:
                h.sim.add_operator(SimOperator(op["interface"], answer_after_s=1,
                                               talk_time_s=100_000))  # fmt: skip
            print(f"  memory: {operators:,} operators logging in; waiting for their queue "
                  f"members (5-7 s for 5,000 here), then {live_calls:,} calls", flush=True)
            synced_s = await _until(h, lambda ln: bool(
                ln.get("members_synced") and ln["members"] >= ln["members_desired"]), 120)
            # The resync hooks after the membership's (web, callbacks) read QueueStatus too, now
            # of the whole floor: idle is after they are done (a quiet report, 3 s on).
            t_synced = h.lines[-1]["t"] if h.lines else 0.0
            await _until(h, lambda ln: ln["t"] > t_synced + 3 and ln["lag_max_ms"] < 50, 60)
            idle = h.lines[-1]
            make = callers(99)
            calls = []
            started = time.monotonic()
            print(f"  memory: members synced in {synced_s} s; RSS idle {idle['rss_mb']} MB",
                  flush=True)  # fmt: skip
            placing = Progress("  memory: placing calls", total=live_calls, unit="calls",
                               every_s=2.0)  # fmt: skip
            for i in range(live_calls):  # 200 calls/s: a realistic peak, not one burst
                calls.append(h.sim.place_call(make(i)))
                if i % 50 == 49:
                    placing.update(i + 1)
                    await asyncio.sleep(0.25)
            placing.finish()
            reached = await _until(h, lambda ln: ln["live_calls"] >= live_calls, 90)
            live_s = round(time.monotonic() - started, 1) if reached >= 0 else -1.0
            await asyncio.sleep(1.5)
            loaded = h.lines[-1]
            ended = Counter(str(c.outcome) for c in calls if c.finished.done())
    return {"operators": operators, "members": idle.get("members", 0),
            "membership_sync_s": synced_s, "live_calls": loaded["live_calls"],
            "live_after_s": live_s, "rss_idle_mb": idle["rss_mb"], "rss_mb": loaded["rss_mb"],
            "tasks": loaded["tasks"], "calls_ended_early": sum(ended.values()),
            "ended_early_outcomes": dict(ended),
            "ami_connects": loaded.get("ami_connects", 0),
            "lag_max_ms": loaded["lag_max_ms"]}  # fmt: skip

"""End to end on SQLite and on PostgreSQL, and the AGI session as the caller sees it
(`make bench`, section `e2e`).

1. The rate ramp of `bench.e2e` (simulator -> a real daemon) once with the daemon on SQLite
   and once on a PostgreSQL this bench starts (tests/pg.py, durable defaults): the sustained
   calls/s of each and their ratio.
2. On each database, right after its ramp, a fresh daemon run at 50 % and 80 % of that
   database's sustained rate with both ends of every `route` AGI session stamped
   (bench/agi_trace.py): the session as the caller (the simulator's dialplan) sees it,
   p50/p99, what ccrouter itself spends in it (p99 of its own segments), and the segment
   breakdown — where the time goes.

Before every step (ramp and latency) `bench.stats.cpu_speed_ms` reads how fast the machine
runs then (`speed_ms`): the machines here change speed by up to 4x within seconds, and a
figure is only comparable with another taken at the same speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import agi_trace, e2e
from bench.stats import cpu_speed_ms

LATENCY_STEP_S = 6.0
LEVELS = (0.5, 0.8)


async def latency_steps(url: str | None, top: float, levels: Sequence[float], seconds: float
                        ) -> list[dict[str, Any]]:  # fmt: skip
    """One daemon (on `url`, or SQLite when None), a traced step at each level of the sustained
    rate `top`; each step says how fast the machine ran just before it (`speed_ms`)."""
    out = []
    overrides = {"database": {"url": url}} if url else None
    with tempfile.TemporaryDirectory(prefix="ccrouter-bench-lat-") as d:
        trace = Path(d) / "daemon-trace.jsonl"
        sim_trace = agi_trace.SimTrace()
        per_step: list[tuple[dict[str, Any], dict[str, dict[str, Any]], list[float]]] = []
        with sim_trace.installed():
            async with e2e.harness(Path(d), time_scale=50, operators_per_queue=60,
                                   config_overrides=overrides,
                                   daemon_args=("--trace", str(trace))) as h:  # fmt: skip
                probe = asyncio.create_task(sim_trace.lag_probe())
                try:
                    for level in levels:
                        speed = cpu_speed_ms()
                        sim_trace.clear()
                        step = await e2e.rate_step(h, round(top * level), seconds)
                        step.update(level=level, speed_ms=speed)
                        per_step.append((step, dict(sim_trace.sessions), list(sim_trace.lags)))
                finally:
                    probe.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await probe
        daemon = agi_trace.read_daemon(trace)  # written when the daemon stopped
        loop = agi_trace.read_loop(trace)
        for step, sessions, lags in per_step:
            out.append({**step, "trace": agi_trace.analyse(sessions, daemon, lags, loop)})
    return out


async def ramp_and_latency(rates: Sequence[float], ramp_step_s: float, latency_step_s: float,
                           url: str | None) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """One database's ramp, then at once its traced 50 / 80 % steps."""
    ramp = await e2e.rate_ramp(rates, ramp_step_s, database_url=url)
    top = ramp.get("sustained_calls_per_s")
    if not top:
        return ramp, {"error": "no sustained rate to take 50 / 80 % of"}
    steps = await latency_steps(url, top, LEVELS, latency_step_s)
    return ramp, {f"{round(s['level'] * 100)}%": s for s in steps}


async def measure(rates: Sequence[float], ramp_step_s: float,
                  latency_step_s: float = LATENCY_STEP_S) -> dict[str, Any]:  # fmt: skip
    """Each database's ramp and then its traced 50 / 80 % steps; without PostgreSQL binaries
    the SQLite half only (the PostgreSQL half says why it was skipped)."""
    from tests.pg import PgServer, PgUnavailable

    try:
        server: PgServer | None = PgServer.start(durable=True)
    except PgUnavailable as exc:
        server = None
        skipped = str(exc)
    latency: dict[str, Any] = {}
    try:
        sqlite, latency["sqlite"] = await ramp_and_latency(rates, ramp_step_s, latency_step_s,
                                                           None)  # fmt: skip
        if server is None:
            postgresql: dict[str, Any] = {"skipped": skipped}
        else:
            postgresql, latency["postgresql"] = await ramp_and_latency(
                rates, ramp_step_s, latency_step_s, await server.database())
    finally:
        if server is not None:
            server.stop()
    s, p = sqlite["sustained_calls_per_s"], postgresql.get("sustained_calls_per_s")
    return {**sqlite, "postgresql": postgresql, "ratio_postgresql_vs_sqlite":
            round(p / s, 2) if s and p is not None else None, "latency": latency}  # fmt: skip

"""The instrumented daemon the benchmarks and the soak start: `python -m bench.daemon --config X`.

It is `ccrouter run` (the real `App` with every default feature) plus one extra feature that
times the `route` AGI script, and a reporter that prints one JSON line on stdout every
`--interval` seconds, measured inside the daemon's own event loop:

    {"t": 12.0, "rss_mb": 61.2, "fds": 23, "tasks": 14, "lag_ms": 0.4, "lag_max_ms": 3.1,
     "route": {"n": 512, "p50_ms": 0.9, "p99_ms": 2.7, "max_ms": 4.0}, "live_calls": 37,
     "cards_written": 1400, "writer_queue": 3, "writer_failures": 0, "ami_connects": 1,
     "members_desired": 36, "members": 36, "members_synced": true}

`route` covers the interval since the previous line: from the script's start to its last
SET VARIABLE answered (the decision, the card opened, every round trip to Asterisk); `decide`
is the routing decision alone (`Router.route`: requirements -> decision -> card opened).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from bench.stats import open_fds, rss_mb, summary_ms
from ccrouter.app import App, default_features, run, settle_heap
from ccrouter.config import load_settings
from ccrouter.dialplan import SCRIPT_ROUTE
from ccrouter.logs import configure_logging
from ccrouter.pbx.agi.server import Script
from ccrouter.pbx.agi.session import AgiSession

LAG_PROBE_S = 0.05


class Probe:
    def __init__(self) -> None:
        self.route_s: list[float] = []
        self.decide_s: list[float] = []
        self.lags: list[float] = []

    async def install(self, app: App) -> None:
        inner: Script = app.scripts[SCRIPT_ROUTE]

        async def timed_route(session: AgiSession) -> None:
            started = time.perf_counter()
            await inner(session)
            self.route_s.append(time.perf_counter() - started)

        app.scripts[SCRIPT_ROUTE] = timed_route
        router = app.router
        decide = router.route

        async def timed_decide(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await decide(*args, **kwargs)
            finally:
                self.decide_s.append(time.perf_counter() - started)

        router.route = timed_decide  # type: ignore[method-assign]

    async def lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + LAG_PROBE_S
            await asyncio.sleep(LAG_PROBE_S)
            self.lags.append(max(0.0, loop.time() - due))

    def line(self, app: App, t: float) -> dict[str, Any]:
        route, self.route_s = self.route_s, []
        decided, self.decide_s = self.decide_s, []
        lags, self.lags = self.lags, []
        writer = app.writer.stats
        return {
            "t": round(t, 2),
            "rss_mb": round(rss_mb(), 1),
            "fds": open_fds(),
            "tasks": len(asyncio.all_tasks()),
            "lag_ms": round(sum(lags) / len(lags) * 1000, 3) if lags else 0.0,
            "lag_max_ms": round(max(lags) * 1000, 3) if lags else 0.0,
            "route": summary_ms(route),
            "decide": summary_ms(decided),
            "live_calls": len(app.tracker.book),
            "cards_written": writer.rows_written,
            "writer_queue": writer.queue_depth,
            "writer_failures": writer.failures,
            "ami_connected": app.ami.connected,
            "ami_connects": app.ami.connects,
            **self.membership(app),
        }

    @staticmethod
    def membership(app: App) -> dict[str, Any]:
        """How far the membership sync got: Asterisk's members of the managed queues (as
        ccrouter sees them) against the desired ones."""
        m = app.membership
        if m is None:
            return {}
        return {"members_desired": len(m.desired), "members": len(m.actual),
                "members_synced": m.synced}  # fmt: skip


async def serve(config: Path, interval: float) -> int:
    settings = load_settings(config)
    configure_logging(settings.log)
    probe = Probe()
    app = App(settings, features=[*default_features(), probe.install])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await app.start()
    settle_heap()
    app.spawn("bench_lag_probe", probe.lag())
    started = loop.time()
    print(json.dumps({"event": "ready", "agi_port": app.agi_address[1]}), flush=True)
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                print(json.dumps(probe.line(app, loop.time() - started)), flush=True)
            if app.failed.is_set():
                return 1
    finally:
        await app.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.daemon")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    return run(serve(args.config, args.interval))


if __name__ == "__main__":
    sys.exit(main())

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

`--trace FILE` also writes, when the daemon stops, one JSON line per `route` session with its
time stamps (`time.perf_counter()`, CLOCK_MONOTONIC: comparable with the simulator's process):
[uniqueid, connection accepted, header complete, script started, decision started, decision
made, last command written, its reply read, script returned] (bench/agi_trace.py joins them
with the simulator's side).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
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
from ccrouter.pbx.agi.connection import AgiConnection
from ccrouter.pbx.agi.server import AgiServer, Script
from ccrouter.pbx.agi.session import AgiReply, AgiSession

LAG_PROBE_S = 0.05


def _trace_connections() -> None:
    """Time stamps on every FastAGI connection: accepted (`_bench_a`), header in (`_bench_h`)."""
    made, on_header = AgiConnection.connection_made, AgiServer._on_header

    def connection_made(conn: AgiConnection, transport: asyncio.BaseTransport) -> None:
        conn._bench_a = time.perf_counter()  # type: ignore[attr-defined]
        made(conn, transport)

    def header(server: AgiServer, conn: AgiConnection, block: bytes) -> None:
        conn._bench_h = time.perf_counter()  # type: ignore[attr-defined]
        on_header(server, conn, block)

    AgiConnection.connection_made = connection_made  # type: ignore[method-assign]
    AgiServer._on_header = header  # type: ignore[method-assign,assignment]


class Probe:
    def __init__(self, trace: Path | None = None) -> None:
        self.route_s: list[float] = []
        self.decide_s: list[float] = []
        self.lags: list[float] = []
        self.trace = trace
        self.traced: list[tuple[Any, ...]] = []
        self._current: dict[asyncio.Task[Any] | None, dict[str, Any]] = {}
        self.gc_pauses: list[float] = []
        self.gc_log: list[tuple[float, float, int]] = []
        self.gc_s = [0.0, 0.0, 0.0]
        """Time in the cyclic GC per generation since the last report line."""
        self.stalls: list[tuple[float, float]] = []
        self.ami_reads: list[tuple[float, float, int]] = []
        self._gc_started = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            now = time.perf_counter()
            self.gc_s[info.get("generation", 0)] += now - self._gc_started
            if info.get("generation") == 2 or now - self._gc_started > 0.001:
                self.gc_pauses.append(now - self._gc_started)
            if self.trace is not None and now - self._gc_started > 0.0005:
                self.gc_log.append((self._gc_started, now, info.get("generation", -1)))

    def _trace_commands(self) -> None:
        command = AgiSession.command
        current = self._current

        async def traced(session: AgiSession, line: str) -> AgiReply:
            tr = current.get(asyncio.current_task())
            written = time.perf_counter()
            try:
                return await command(session, line)
            finally:
                if tr is not None:
                    tr["c"].append([written, time.perf_counter()])

        AgiSession.command = traced  # type: ignore[method-assign,assignment]

    def _trace_ami(self) -> None:
        """Each AMI callback that took over 1 ms: (start, end, bytes read; 0 for the turns
        that handle the rest of a big read) — the event bursts."""
        from ccrouter.pbx.ami.protocol import FastAMIProtocol

        received, next_turn = FastAMIProtocol.data_received, FastAMIProtocol._next_turn
        reads = self.ami_reads
        reading = False  # a read's first turn runs inside data_received: timed once, with it

        def data_received(proto: FastAMIProtocol, data: bytes) -> None:
            nonlocal reading
            t0, reading = time.perf_counter(), True
            try:
                received(proto, data)
            finally:
                reading = False
            t1 = time.perf_counter()
            if t1 - t0 > 0.001:
                reads.append((t0, t1, len(data)))

        def turn(proto: FastAMIProtocol) -> None:
            t0 = time.perf_counter()
            next_turn(proto)
            t1 = time.perf_counter()
            if t1 - t0 > 0.001 and not reading:
                reads.append((t0, t1, 0))

        FastAMIProtocol.data_received = data_received  # type: ignore[method-assign]
        FastAMIProtocol._next_turn = turn  # type: ignore[method-assign]

    async def install(self, app: App) -> None:
        inner: Script = app.scripts[SCRIPT_ROUTE]
        if self.trace is not None:
            _trace_connections()
            self._trace_commands()
            self._trace_ami()

        async def timed_route(session: AgiSession) -> None:
            started = time.perf_counter()
            if self.trace is None:
                await inner(session)
            else:
                conn = session._reader
                tr: dict[str, Any] = {
                    "u": session.request.uniqueid, "a": getattr(conn, "_bench_a", 0.0),
                    "h": getattr(conn, "_bench_h", 0.0), "s": started, "c": []}  # fmt: skip
                task = asyncio.current_task()
                self._current[task] = tr
                try:
                    await inner(session)
                finally:
                    del self._current[task]
                    w, r = tr["c"][-1] if tr["c"] else (0.0, 0.0)
                    # a tuple of atoms: the cyclic GC stops tracking it
                    self.traced.append((tr["u"], tr["a"], tr["h"], tr["s"], tr.get("d0", 0.0),
                                        tr.get("d1", 0.0), w, r, time.perf_counter()))  # fmt: skip
            self.route_s.append(time.perf_counter() - started)

        app.scripts[SCRIPT_ROUTE] = timed_route
        router = app.router
        decide = router.route

        async def timed_decide(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await decide(*args, **kwargs)
            finally:
                ended = time.perf_counter()
                self.decide_s.append(ended - started)
                tr = self._current.get(asyncio.current_task())
                if tr is not None:
                    tr["d0"], tr["d1"] = started, ended

        router.route = timed_decide  # type: ignore[method-assign]

    def stall_probe(self, every_s: float = 0.001, over_s: float = 0.003) -> None:
        """A timer every `every_s`: each time it fires more than `over_s` late, the stall's
        (due, fired) perf_counter stamps are kept (written with the trace)."""
        loop = asyncio.get_running_loop()
        stalls = self.stalls

        def tick(due: float) -> None:
            now = time.perf_counter()
            if now - due > over_s:
                stalls.append((due, now))
            loop.call_later(every_s, tick, now + every_s)

        loop.call_later(every_s, tick, time.perf_counter() + every_s)

    async def lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + LAG_PROBE_S
            await asyncio.sleep(LAG_PROBE_S)
            self.lags.append(max(0.0, loop.time() - due))

    def flush_trace(self) -> None:
        """Write the traced sessions (at the end: writing them during the run would stall the
        loop it measures)."""
        if self.trace is None or not self.traced:
            return
        traced, self.traced = self.traced, []
        with self.trace.open("a", encoding="utf-8") as f:
            f.write("".join(json.dumps(tr, separators=(",", ":")) + "\n" for tr in traced))
        stalls = self.trace.with_name(self.trace.name + ".stalls.json")
        stalls.write_text(json.dumps({"stalls": self.stalls, "gc": self.gc_log,
                                      "ami_reads": self.ami_reads}), encoding="utf-8")

    def line(self, app: App, t: float) -> dict[str, Any]:
        route, self.route_s = self.route_s, []
        decided, self.decide_s = self.decide_s, []
        lags, self.lags = self.lags, []
        pauses, self.gc_pauses = self.gc_pauses, []
        gc_s, self.gc_s = self.gc_s, [0.0, 0.0, 0.0]
        writer = app.writer.stats
        return {
            "t": round(t, 2),
            "rss_mb": round(rss_mb(), 1),
            "fds": open_fds(),
            "tasks": len(asyncio.all_tasks()),
            "lag_ms": round(sum(lags) / len(lags) * 1000, 3) if lags else 0.0,
            "lag_max_ms": round(max(lags) * 1000, 3) if lags else 0.0,
            "gc_max_ms": round(max(pauses, default=0.0) * 1000, 3),
            "gc_ms": [round(x * 1000, 2) for x in gc_s],
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


async def serve(config: Path, interval: float, trace: Path | None = None) -> int:
    settings = load_settings(config)
    configure_logging(settings.log)
    probe = Probe(trace)
    app = App(settings, features=[*default_features(), probe.install])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await app.start()
    settle_heap()
    app.spawn("bench_lag_probe", probe.lag())
    if trace is not None:
        probe.stall_probe()
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
        probe.flush_trace()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.daemon")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--trace", type=Path, default=None,
                        help="append every route session's time stamps here (JSON lines)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="cProfile the daemon; the stats go to this file when it stops")
    args = parser.parse_args()
    if args.profile is None:
        return run(serve(args.config, args.interval, args.trace))
    import cProfile

    profiler = cProfile.Profile()
    try:
        return profiler.runcall(run, serve(args.config, args.interval, args.trace))
    finally:
        profiler.dump_stats(args.profile)


if __name__ == "__main__":
    sys.exit(main())

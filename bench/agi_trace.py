"""Where a `route` AGI session's time goes, seen from both ends of the socket.

The simulator (this process) stamps each session when its dialplan reaches AGI() (`start`),
when its connect() completed, each command line read and reply written, and when the session
is over (`end`: ccrouter closed the socket and the HANGUP was sent); the daemon
(`bench.daemon --trace`) stamps the same session (by uniqueid) when it accepted the connection,
had the header, started and ended the script, made the decision and sent the command / read its
reply. Both use `time.perf_counter()` (CLOCK_MONOTONIC on Linux), so the stamps of the two
processes compare directly.

Segments of one session (p50/p99 of each, and which one dominates the slowest 1 %):

    sim_connect sim start -> sim connected             (sim's loop: connect() and its completion)
    accept      sim connected -> daemon accepted       (daemon's loop accepting; 0 if it was first)
    header      both -> header complete                (sim writes the env block, daemon reads)
    to_script   header -> script started               (daemon: session task scheduled)
    decide      the routing decision (+ card opened)   (daemon)
    to_command  decision -> command written            (daemon)
    sim_read    command written -> sim read it         (sim's loop)
    sim_exec    sim read -> reply written              (sim)
    reply_read  reply written -> daemon read it        (daemon's loop)
    to_close    reply read -> script returned          (daemon)
    close       script returned -> sim read the end    (daemon closes, sim's loop)

The caller's session ends where Asterisk's AGI() returns: when the simulator read the end of
the stream. What the simulator does after that (close, wait_closed: `sim_cleanup`) is reported
apart; before 2026-12-03 it was counted in the session (one more turn of its loop).

The simulator's event-loop lag is sampled too (a 2 ms timer), as is the daemon's (its report).
The simulator's cyclic GC is off during a step (`bench.e2e.simulator_without_gc`).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.stats import percentile

SEGMENTS = ("sim_connect", "accept", "header", "to_script", "decide", "to_command", "sim_read",
            "sim_exec",
            "reply_read", "to_close", "close")  # fmt: skip
DAEMON_SIDE = frozenset({"accept", "to_script", "decide", "to_command", "reply_read",
                         "to_close"})  # fmt: skip
"""Segments that wait for ccrouter alone: `accept` is its loop accepting a connection the
kernel has completed already, `reply_read` its loop reading the reply."""
SIM_SIDE = frozenset({"sim_connect", "sim_read", "sim_exec", "close"})
"""Segments that wait for the simulator alone; `header` waits for both (the simulator's loop
writes the env block once its connect completes, ccrouter's loop reads it)."""


class _Asyncio(types.ModuleType):
    """`asyncio` as the simulator's AGI module sees it: the same, but open_connection stamped."""

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)


class _EofStamped:
    """The simulator's reader, stamping when it read the end of the stream (`eof`): there
    Asterisk's AGI() returns (res_agi.c closes the socket and the dialplan goes on); the
    simulator's own clean-up after it (close, wait_closed) is not the caller's wait."""

    def __init__(self, reader: asyncio.StreamReader, tr: dict[str, Any]) -> None:
        self._reader, self._tr = reader, tr

    async def readline(self) -> bytes:
        line = await self._reader.readline()
        if not line:
            self._tr.setdefault("eof", time.perf_counter())
        return line


class SimTrace:
    """Patches the simulator's AGI client (this process) to stamp every session."""

    def __init__(self) -> None:
        self.sessions: dict[str, dict[str, Any]] = {}
        self.lags: list[float] = []

    @contextmanager
    def installed(self) -> Iterator[SimTrace]:
        from ccrouter.sim import agi

        run, execute = agi.AgiSession.run, agi.AgiSession._execute
        sessions = self.sessions
        current: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
            "bench_agi_trace", default=None)  # seen by the task wait_for() makes, too

        async def open_connection(host: str, port: int) -> Any:
            reader, writer = await asyncio.open_connection(host, port)
            tr = current.get()
            if tr is None:
                return reader, writer
            tr["c"] = time.perf_counter()
            return _EofStamped(reader, tr), writer

        proxy = _Asyncio("asyncio")
        proxy.open_connection = open_connection  # type: ignore[attr-defined]

        async def traced_run(s: agi.AgiSession, host: str, port: int, script: str,
                             args: Any) -> str:  # fmt: skip
            uid = dict(s.chan.agi_env()).get("agi_uniqueid", "")
            tr: dict[str, Any] = {"start": time.perf_counter(), "x": []}
            s._bench_trace = tr  # type: ignore[attr-defined]
            current.set(tr)
            try:
                return await run(s, host, port, script, args)
            finally:
                tr["end"] = time.perf_counter()
                sessions[uid] = tr

        async def traced_execute(s: agi.AgiSession, line: str) -> bytes:
            read = time.perf_counter()
            reply = await execute(s, line)
            s._bench_trace["x"].append([read, time.perf_counter()])  # type: ignore[attr-defined]
            return reply

        agi.AgiSession.run = traced_run  # type: ignore[method-assign]
        agi.AgiSession._execute = traced_execute  # type: ignore[method-assign]
        agi.asyncio = proxy  # type: ignore[assignment]
        try:
            yield self
        finally:
            agi.asyncio = asyncio
            agi.AgiSession.run = run  # type: ignore[method-assign]
            agi.AgiSession._execute = execute  # type: ignore[method-assign]

    async def lag_probe(self, every_s: float = 0.002) -> None:
        while True:
            due = time.perf_counter() + every_s
            await asyncio.sleep(every_s)
            self.lags.append(max(0.0, time.perf_counter() - due))

    def clear(self) -> None:
        self.sessions.clear()
        self.lags.clear()

    def caller_p99_ms(self) -> float:
        """p99 of the sessions so far as the caller sees them (AGI() reached -> returned)."""
        waits = sorted((tr.get("eof", tr["end"]) - tr["start"]) * 1000
                       for tr in self.sessions.values() if "end" in tr)  # fmt: skip
        return round(percentile(waits, 99), 3)


DAEMON_FIELDS = ("u", "a", "h", "s", "d0", "d1", "w", "r", "e")


def read_daemon(path: Path) -> dict[str, dict[str, Any]]:
    """The daemon's trace (`bench.daemon --trace`), by uniqueid."""
    out = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            tr = dict(zip(DAEMON_FIELDS, json.loads(line), strict=True))
            out[tr["u"]] = tr
    return out


def read_loop(path: Path) -> dict[str, list[list[float]]]:
    """The daemon's loop stalls, GC pauses and long AMI reads (`bench.daemon --trace`)."""
    loop = path.with_name(path.name + ".stalls.json")
    if not loop.exists():
        return {}
    return dict(json.loads(loop.read_text(encoding="utf-8")))


def _overlap(a: list[list[float]], b: list[list[float]]) -> float:
    """Seconds of the intervals `a` that lie inside intervals `b` (each list sorted, disjoint)."""
    total, j = 0.0, 0
    for x0, x1, *_ in a:
        while j < len(b) and b[j][1] <= x0:
            j += 1
        k = j
        while k < len(b) and b[k][0] < x1:
            total += max(0.0, min(x1, b[k][1]) - max(x0, b[k][0]))
            k += 1
    return total


def loop_summary(loop: dict[str, list[list[float]]], t0: float, t1: float) -> dict[str, Any]:
    """Between t0 and t1: the daemon's loop stalls (its 1 ms timer fired > 3 ms late), how
    much of that stalled time was inside one AMI read's handling (> 1 ms each) and the GC."""
    def within(name: str) -> list[list[float]]:
        return sorted(x for x in loop.get(name, []) if t0 <= x[0] <= t1)

    stalls, reads, pauses = within("stalls"), within("ami_reads"), within("gc")
    ms = lambda xs: round(sum(x[1] - x[0] for x in xs) * 1000, 1)  # noqa: E731
    top = lambda xs: round(max((x[1] - x[0] for x in xs), default=0.0) * 1000, 1)  # noqa: E731
    return {"stalls": len(stalls), "stalled_ms": ms(stalls), "stall_max_ms": top(stalls),
            "ami_reads_over_1ms": len(reads), "ami_read_max_ms": top(reads),
            "ami_read_max_bytes": max((int(x[2]) for x in reads), default=0),
            "stalled_in_ami_reads_ms": round(_overlap(stalls, reads) * 1000, 1),
            "gc_pauses_over_half_ms": len(pauses), "gc_ms": ms(pauses), "gc_max_ms": top(pauses),
            "stalled_in_gc_ms": round(_overlap(stalls, pauses) * 1000, 1)}  # fmt: skip


def segments(sim: dict[str, Any], d: dict[str, Any]) -> dict[str, float] | None:
    """One session's segments in ms (the route script's one command round trip)."""
    if not d["w"] or not d["d1"] or not sim.get("x") or "end" not in sim:
        return None
    w, r, (xi, xo) = d["w"], d["r"], sim["x"][-1]
    c = sim.get("c", sim["start"])
    seg = {"sim_connect": (c - sim["start"]) * 1000, "accept": max(0.0, d["a"] - c) * 1000,
           "header": (d["h"] - max(d["a"], c)) * 1000}  # fmt: skip
    seg["to_script"] = (d["s"] - d["h"]) * 1000
    seg["decide"] = (d["d1"] - d["d0"]) * 1000
    seg["to_command"] = (w - d["d1"]) * 1000
    seg["sim_read"] = (xi - w) * 1000
    seg["sim_exec"] = (xo - xi) * 1000
    seg["reply_read"] = (r - xo) * 1000
    seg["to_close"] = (d["e"] - r) * 1000
    end = sim.get("eof", sim["end"])
    seg["close"] = (end - d["e"]) * 1000
    seg["caller_session"] = (end - sim["start"]) * 1000
    seg["sim_cleanup"] = (sim["end"] - end) * 1000
    seg["daemon_route"] = (d["e"] - d["s"]) * 1000
    seg["daemon_own"] = sum(seg[n] for n in DAEMON_SIDE)
    return seg


def _q(values: list[float]) -> dict[str, float]:
    v = sorted(values)
    return {"p50_ms": round(percentile(v, 50), 3), "p99_ms": round(percentile(v, 99), 3),
            "max_ms": round(v[-1], 3) if v else 0.0}  # fmt: skip


def analyse(sim: dict[str, dict[str, Any]], daemon: dict[str, dict[str, Any]],
            lags: list[float], loop: dict[str, list[list[float]]] | None = None
            ) -> dict[str, Any]:  # fmt: skip
    """Per-segment percentiles, and the share of each segment in the slowest 1 % of sessions
    (by the caller's session time); with `loop` (`read_loop`) the daemon's loop meanwhile."""
    rows = [s for u, tr in sim.items() if u in daemon
            if (s := segments(tr, daemon[u])) is not None]  # fmt: skip
    out: dict[str, Any] = {"sessions": len(rows), "unmatched_sim": len(sim) - len(rows)}
    if not rows:
        return out
    for name in ("caller_session", "daemon_route", "daemon_own", *SEGMENTS, "sim_cleanup"):
        out[name] = _q([r[name] for r in rows])
    rows.sort(key=lambda r: r["caller_session"])
    slow = rows[-max(1, len(rows) // 100):]
    total = sum(r["caller_session"] for r in slow)
    out["slowest_1pct_share"] = {name: round(sum(r[name] for r in slow) / total, 3)
                                 for name in SEGMENTS}  # fmt: skip
    share = out["slowest_1pct_share"]
    out["slowest_1pct_daemon_share"] = round(sum(share[n] for n in DAEMON_SIDE), 3)
    out["slowest_1pct_sim_share"] = round(sum(share[n] for n in SIM_SIDE), 3)
    out["sim_loop_lag"] = _q([x * 1000 for x in lags])
    if loop:
        starts = [tr["start"] for tr in sim.values()]
        out["daemon_loop"] = loop_summary(loop, min(starts), max(tr["end"] for tr in sim.values()
                                                               if "end" in tr))  # fmt: skip
    return out

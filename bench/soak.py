"""`make soak DURATION=3600` (`python -m bench.soak --duration S [--rate 50]`): the PBX simulator
at RATE calls/s (Poisson; route + queue + answer + talk + card) against the instrumented ccrouter
daemon for S seconds. Prints the daemon's RSS, open FDs, asyncio task count and event-loop lag
every minute (every 10 s when S < 300), then says whether they stayed flat within 10 % after the
warm-up (the first fifth of the run, at least one interval). Ends by itself; exit code 1 when a
figure grew or calls were lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.e2e import callers, harness
from bench.progress import announce, fmt_duration

TOLERANCE = 0.10
DRAIN_S = 120.0
"""How long the calls still in progress at the end may take to end."""


def verdict(samples: list[dict[str, Any]], warmup: int) -> tuple[bool, list[str]]:
    """Flat = the last samples' mean stays within 10 % of the first post-warm-up samples' mean
    (RSS, FDs, tasks); lag only has to stay small (it is noise around a few ms)."""
    after = samples[warmup:]
    if len(after) < 2:
        return True, ["too short to judge after warm-up"]
    k = max(1, len(after) // 3)
    lines, ok = [], True
    for key in ("rss_mb", "fds", "tasks"):
        first = sum(s[key] for s in after[:k]) / k
        last = sum(s[key] for s in after[-k:]) / k
        slack = max(first * TOLERANCE, 2 if key != "rss_mb" else 1.0)
        flat = last <= first + slack
        ok &= flat
        lines.append(f"{key}: {first:.1f} -> {last:.1f} ({'flat' if flat else 'GREW'})")
    lag = max(s["lag_max_ms"] for s in after)
    lines.append(f"event-loop lag max after warm-up: {lag:.1f} ms")
    return ok, lines


async def soak(duration: float, rate: float, interval: float) -> int:
    with tempfile.TemporaryDirectory(prefix="ccrouter-soak-") as d:
        async with harness(Path(d), time_scale=20, operators_per_queue=30,
                           interval=interval) as h:  # fmt: skip
            print(f"soak: {rate} calls/s for {duration:.0f} s, a line every {interval:.0f} s "
                  f"(ccrouter pid {h.daemon.proc.pid})", flush=True)  # fmt: skip
            announce("soak", duration, f"then up to {fmt_duration(DRAIN_S)} for the calls in "
                     "progress to end; a line per sample with the time left")  # fmt: skip
            print(f"{'t_s':>6} {'rss_mb':>7} {'fds':>5} {'tasks':>6} {'lag_ms':>7} "
                  f"{'lag_max':>8} {'live':>5} {'cards':>8} {'route_p99':>9} {'ETA':>11}",
                  flush=True)  # fmt: skip
            load = asyncio.create_task(h.sim.run_load(rate, duration, callers(7), wait=False))
            samples: list[dict[str, Any]] = []
            printed = 0
            t0 = time.monotonic()
            while not load.done():
                await asyncio.sleep(0.5)
                while printed < len(h.lines):
                    sample = h.lines[printed]
                    printed += 1
                    if sample.get("event") == "ready" or sample["at"] < t0:
                        continue
                    samples.append(sample)
                    print(f"{sample['at'] - t0:6.0f} {sample['rss_mb']:7.1f} {sample['fds']:5d} "
                          f"{sample['tasks']:6d} {sample['lag_ms']:7.2f} "
                          f"{sample['lag_max_ms']:8.1f} {sample['live_calls']:5d} "
                          f"{sample['cards_written']:8d} {sample['route']['p99_ms']:9.2f} "
                          f"{fmt_duration(duration - (sample['at'] - t0)):>11}",
                          flush=True)  # fmt: skip
            calls = load.result()
            await asyncio.wait_for(asyncio.gather(*(c.finished for c in calls)), DRAIN_S)
            outcomes = Counter(c.outcome for c in calls)
    ok, lines = verdict(samples, max(1, len(samples) // 5))
    print(f"\nsoak: {len(calls)} calls, outcomes {dict(outcomes)}")
    for line in lines:
        print(f"  {line}")
    lost = len(calls) - outcomes.get("answered", 0) - outcomes.get("abandoned", 0)
    print(f"soak: {'FLAT' if ok else 'NOT FLAT'} within {TOLERANCE:.0%} after warm-up; "
          f"{lost} calls neither answered nor abandoned")
    print(json.dumps({"samples": len(samples), "flat": ok, "outcomes": dict(outcomes)}))
    return 0 if ok and lost == 0 else 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak")
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds (default 3600)")
    parser.add_argument("--rate", type=float, default=50.0, help="calls per second (default 50)")
    args = parser.parse_args(argv)
    interval = 60.0 if args.duration >= 300 else 10.0
    from ccrouter.app import run

    return run(soak(args.duration, args.rate, interval))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

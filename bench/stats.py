"""Small measuring helpers shared by the benchmarks and the soak (no ccrouter imports)."""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100, nearest rank) of already sorted values; 0.0 when empty."""
    if not sorted_values:
        return 0.0
    k = max(0, min(len(sorted_values) - 1, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return float(sorted_values[k])


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """{n, p50_ms, p99_ms, max_ms} of durations given in seconds."""
    values = sorted(seconds)
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50) * 1000, 3),
        "p99_ms": round(percentile(values, 99) * 1000, 3),
        "max_ms": round((values[-1] if values else 0.0) * 1000, 3),
    }


def rss_mb(pid: int | None = None) -> float:
    """Resident set size in MiB (Linux /proc; this process's peak elsewhere)."""
    try:
        with open(f"/proc/{pid or os.getpid()}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def open_fds(pid: int | None = None) -> int:
    try:
        return len(os.listdir(f"/proc/{pid or os.getpid()}/fd"))
    except OSError:
        return -1


def cpu_s(pid: int | None = None) -> float:
    """CPU seconds (user + system, every thread) the process has used so far; 0.0 off Linux."""
    try:
        with open(f"/proc/{pid or os.getpid()}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds every CPU of the machine has been busy so far (not idle, not waiting for
    I/O: /proc/stat); 0.0 off Linux. Less the processes under test: what others took."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


SPEED_LOOP = 1_000_000


def cpu_speed_ms(rounds: int = 5) -> float:
    """How long a fixed pure-Python loop (SPEED_LOOP additions) takes on this machine now, in
    ms: the median of `rounds`. Run between steps, with the processes under test idle. On the
    2-core machines here the same loop took 35 ms in one minute and 67 to 134 ms, changing
    within a second, twenty minutes later, with no other process running and no CPU steal
    reported (2026-12-04): a benchmark step's figure says little without this beside it."""
    times = []
    for _ in range(rounds):
        t0, x = time.perf_counter(), 0
        for i in range(SPEED_LOOP):
            x += i & 7
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times) * 1000, 2)

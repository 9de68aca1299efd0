"""A FastAGI load generator that behaves like Asterisk: `python -m bench.agi_client PORT C SECONDS`.

C concurrent channels, each running sessions back to back: connect, send the `agi_*` header
(the keys of the recorded Asterisk 22 session), answer every command `200 result=1`, until the
server closes. Prints one JSON line: sessions, commands per session, sessions/s, p50/p99 (ms,
connect to close). Runs in its own process so the server under test has a core to itself.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time

from bench.stats import summary_ms

HEADER = "".join(f"{k}: {v}\n" for k, v in (
    ("agi_network", "yes"), ("agi_network_script", "route"),
    ("agi_request", "agi://127.0.0.1:4573/route"), ("agi_channel", "PJSIP/trunk-00000001"),
    ("agi_language", "en"), ("agi_type", "PJSIP"), ("agi_uniqueid", "1795443825.1"),
    ("agi_version", "22.10.1"), ("agi_callerid", "79001234567"),
    ("agi_calleridname", "Ivan"), ("agi_callingpres", "0"), ("agi_callingani2", "0"),
    ("agi_callington", "0"), ("agi_callingtns", "0"), ("agi_dnid", "712000100"),
    ("agi_rdnis", "unknown"), ("agi_context", "ccrouter-inbound"),
    ("agi_extension", "712000100"), ("agi_priority", "3"), ("agi_enhanced", "0.0"),
    ("agi_accountcode", ""), ("agi_threadid", "140230001"), ("agi_arg_1", "did=712000100"),
)).encode() + b"\n"  # fmt: skip
REPLY = b"200 result=1\n"
_UNIQUEID = b"agi_uniqueid: 1795443825.1\n"


async def session(port: int, serial: int) -> tuple[float, int]:
    """One call: its own uniqueid, as Asterisk gives every channel."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HEADER.replace(_UNIQUEID, b"agi_uniqueid: 1795443825.%d\n" % serial))
    commands = 0
    while await reader.readline():
        commands += 1
        writer.write(REPLY)
    writer.close()
    return time.perf_counter() - started, commands


async def load(port: int, concurrency: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    commands: list[int] = []
    deadline = time.perf_counter() + seconds
    serials = itertools.count(int(time.time() * 1000) % 10**9 * 1000)

    async def channel() -> None:
        while time.perf_counter() < deadline:
            took, n = await session(port, next(serials))
            latencies.append(took)
            commands.append(n)

    started = time.perf_counter()
    await asyncio.gather(*(channel() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "sessions": len(latencies),
        "commands_per_session": max(set(commands), key=commands.count) if commands else 0,
        "sessions_per_s": round(len(latencies) / elapsed, 1),
        **{k: v for k, v in summary_ms(latencies).items() if k != "n"},
    }


def main() -> None:
    port, concurrency, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    try:
        import uvloop

        result = uvloop.run(load(port, concurrency, seconds))
    except ImportError:  # pragma: no cover
        result = asyncio.run(load(port, concurrency, seconds))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

"""Callback claims with several ccrouter instances contending on one PostgreSQL (`make bench`,
section `pg`).

N pending callback requests; 3 processes (`python -m bench.claim_bench --worker URL`), each
with its own engine and `CallbackStore` — ccrouter's claim code, `CallbackStore.claim`: the
conditional `UPDATE ... WHERE state = 'pending' AND attempts = n RETURNING` and the attempt
`INSERT`, one committed transaction — read the pending requests and claim them in the same
order (the worst case: every request is fought over by all three), `--concurrency` claims in
flight per process (a dispatcher with several free operators). They start together (a line on
stdin) and report what they claimed. Claims/s is the requests claimed over the time from the
first start to the last finish (time.perf_counter: one clock for every process); a double claim
is a request claimed by more than one claimer, or with more than one attempt row.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

T0 = 1_700_000_000.0


async def seed(dsn: str, n: int) -> None:
    """`n` pending callback requests (one COPY)."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        rows = [(f"7900{i:07d}", "callback", "pending", "wallet-ru", T0 + i, T0, T0, T0, 0, 1)
                for i in range(n)]  # fmt: skip
        await conn.copy_records_to_table(
            "callback_requests", records=rows,
            columns=["number", "kind", "state", "target", "place_at", "due_at", "created_at",
                     "updated_at", "attempts", "abandons"])  # fmt: skip
    finally:
        await conn.close()


async def worker(url: str, concurrency: int, name: str) -> dict[str, Any]:
    from ccrouter.callbacks.store import CallbackStore
    from ccrouter.db.engine import make_engine

    engine = make_engine(url)
    store = CallbackStore(engine)
    pending = await store.pending()
    print(json.dumps({"ready": len(pending)}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    todo = iter(pending)
    claimed: list[int] = []
    lost = 0

    async def claimer(k: int) -> None:
        nonlocal lost
        for i, r in enumerate(todo):
            attempt = await store.claim(r, card=f"{name}-{k}-{i}", action_id=f"{name}.{k}.{i}",
                                        channel_id=f"{name}.{k}.{i}", target=r.target,
                                        now=time.time())  # fmt: skip
            if attempt is None:
                lost += 1
            else:
                claimed.append(r.id)

    started = time.perf_counter()
    await asyncio.gather(*(claimer(k) for k in range(concurrency)))
    ended = time.perf_counter()
    await store.close()
    await engine.dispose()
    return {"claimed": claimed, "lost": lost, "started": started, "ended": ended}


async def measure(server: Any, requests: int = 6000, instances: int = 3,
                  concurrency: int = 4) -> dict[str, Any]:  # fmt: skip
    import asyncpg

    url = await server.database(migrated=True)
    dsn = server.dsn(url.rsplit("/", 1)[1])
    await seed(dsn, requests)
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.claim_bench", "--worker", url,
        "--concurrency", str(concurrency), "--name", f"i{k}",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        for k in range(instances)]  # fmt: skip
    try:
        for p in procs:
            assert p.stdout is not None
            ready = json.loads(await asyncio.wait_for(p.stdout.readline(), 60))
            if ready["ready"] != requests:
                raise RuntimeError(f"a worker read {ready['ready']} pending requests, not "
                                   f"{requests}")  # fmt: skip
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(b"go\n")
            await p.stdin.drain()
        results = []
        for p in procs:
            assert p.stdout is not None
            results.append(json.loads(await asyncio.wait_for(p.stdout.readline(), 300)))
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
            await p.wait()
    conn = await asyncpg.connect(dsn)
    try:
        attempts = await conn.fetchval("SELECT count(*) FROM callback_attempts")
        multi = await conn.fetchval("SELECT count(*) FROM (SELECT request_id FROM "
                                    "callback_attempts GROUP BY request_id HAVING count(*) > 1) m")
        still = await conn.fetchval("SELECT count(*) FROM callback_requests "
                                    "WHERE state = 'pending'")  # fmt: skip
    finally:
        await conn.close()
    by_request = Counter(i for r in results for i in r["claimed"])
    claimed = len(by_request)
    elapsed = max(r["ended"] for r in results) - min(r["started"] for r in results)
    return {
        "requests": requests, "instances": instances, "concurrency_per_instance": concurrency,
        "claimed": claimed, "claims_per_instance": [len(r["claimed"]) for r in results],
        "lost_races": sum(r["lost"] for r in results), "seconds": round(elapsed, 2),
        "claims_per_s": round(claimed / elapsed) if elapsed > 0 else 0,
        "double_claims": sum(1 for c in by_request.values() if c > 1) + multi,
        "attempt_rows": attempts, "left_pending": still,
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.claim_bench")
    parser.add_argument("--worker", required=True, help="the database URL (a worker process)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--name", default="i0")
    args = parser.parse_args()
    from ccrouter.config import LogSettings
    from ccrouter.logs import configure_logging

    configure_logging(LogSettings(format="json", level="error"), stream=sys.stderr)
    out = asyncio.run(worker(args.worker, args.concurrency, args.name))
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

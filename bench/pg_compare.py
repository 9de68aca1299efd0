"""PostgreSQL vs SQLite for the card store (a measurement script, not part of `make bench`):

    python -m bench.pg_compare [--cards 100000] [--lookups 3000] [--calls 20000]

Starts its own PostgreSQL (tests/pg.py, with PostgreSQL's durable defaults: fsync on,
synchronous_commit on) and, on each backend: the card writer's throughput with call-shaped
writes (`bench.store_bench`'s load: an insert then 5 updates per card across 200 live calls)
and `CardStore.get` p50/p99 on a table of `--cards` cards. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from typing import Any

from bench.stats import summary_ms

T0 = 1_700_000_000.0


def _number(serial: int) -> str:
    from ccrouter.calls.model.cards import card_number

    return card_number(serial)


async def writer_throughput(url: str, calls: int) -> dict[str, Any]:
    from ccrouter.calls.model.cards import CardWrite
    from ccrouter.calls.writer import CardWriter
    from ccrouter.config import DatabaseSettings
    from ccrouter.db.engine import make_engine
    from ccrouter.db.migrate import migrate

    engine = make_engine(url)
    await migrate(engine)
    writer = CardWriter(engine, DatabaseSettings())
    task = asyncio.create_task(writer.run())
    live: list[tuple[str, int]] = []
    submitted = 0
    started = time.perf_counter()
    for serial in range(1, calls + 1):
        number = _number(10_000_000 + serial)
        writer.submit(CardWrite(number, {"kind": "inbound", "state": "open",
                                         "uniqueid": f"1.{serial}", "started_at": T0},
                                insert=True))  # fmt: skip
        live.append((number, 0))
        submitted += 1
        if len(live) >= 200:
            for i, (num, step) in enumerate(live):
                writer.submit(CardWrite(num, {"queue": "wallet-ru", "wait_s": step}))
                live[i] = (num, step + 1)
                submitted += 1
            live = [(n, s) for n, s in live if s < 5]
        if serial % 500 == 0:
            await asyncio.sleep(0)
    await writer.flush()
    elapsed = time.perf_counter() - started
    stats = writer.stats
    await writer.close()
    await task
    await engine.dispose()
    return {"cards": calls, "writes": submitted, "seconds": round(elapsed, 2),
            "cards_per_s": round(calls / elapsed), "writes_per_s": round(submitted / elapsed),
            "commits": stats.commits}  # fmt: skip


def _rows(cards: int) -> list[tuple[Any, ...]]:
    rng = random.Random(1)
    out = []
    for serial in range(1, cards + 1):
        at = T0 + serial * 0.3
        uid = f"{int(at)}.{serial}"
        out.append((_number(serial), "inbound", "closed", uid, uid,
                    f"7900{rng.randrange(10**7):07d}", at, "wallet-ru", "answered", "Operator",
                    60, at, at))  # fmt: skip
    return out


COLS = ("number", "kind", "state", "uniqueid", "linkedid", "caller_num", "started_at", "queue",
        "outcome", "operator", "talk_s", "created_at", "updated_at")  # fmt: skip


async def fill(url: str, cards: int) -> None:
    """`cards` cards, loaded in bulk (sqlite3 executemany; asyncpg COPY)."""
    from ccrouter.db.engine import make_engine
    from ccrouter.db.migrate import migrate

    engine = make_engine(url)
    await migrate(engine)
    rows = _rows(cards)
    async with engine.connect() as conn:
        raw: Any = (await conn.get_raw_connection()).driver_connection
        if engine.dialect.name == "postgresql":
            await raw.copy_records_to_table("cards", records=rows, columns=list(COLS))
            await raw.execute("ANALYZE cards")
        else:
            marks = ", ".join("?" * len(COLS))
            await raw.execute("BEGIN")
            await raw.executemany(f"INSERT INTO cards ({', '.join(COLS)}) VALUES ({marks})", rows)
            await raw.commit()
    await engine.dispose()


async def lookups(url: str, numbers: list[str], via_engine: bool = False) -> dict[str, float]:
    from ccrouter.calls.store import CardStore
    from ccrouter.db.engine import make_engine

    engine = make_engine(url)
    store = CardStore(engine)
    if via_engine:
        await store.close()
        store._reader = None  # the plain SQLAlchemy query, for comparison
    try:
        await store.get(numbers[0])
        times = []
        for n in numbers:
            t = time.perf_counter()
            card = await store.get(n)
            times.append(time.perf_counter() - t)
            assert card is not None, n
    finally:
        await store.close()
        await engine.dispose()
    return summary_ms(times)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from tests.pg import PgServer

    server = PgServer.start(durable=True)
    out: dict[str, Any] = {"cards_in_table": args.cards, "lookups": args.lookups}
    rng = random.Random(3)
    numbers = [_number(rng.randrange(1, args.cards + 1)) for _ in range(args.lookups)]
    try:
        with tempfile.TemporaryDirectory(prefix="ccrouter-pgcmp-") as d:
            urls = {"sqlite": (f"sqlite+aiosqlite:///{d}/w.db", f"sqlite+aiosqlite:///{d}/l.db"),
                    "postgresql": (await server.database(), await server.database())}
            for name, (w_url, l_url) in urls.items():
                out[f"{name}_writer"] = await writer_throughput(w_url, args.calls)
                await fill(l_url, args.cards)
                out[f"{name}_lookup"] = await lookups(l_url, numbers)
                out[f"{name}_lookup_via_engine"] = await lookups(l_url, numbers, via_engine=True)
    finally:
        server.stop()
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=3000)
    parser.add_argument("--calls", type=int, default=20_000)
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=1))

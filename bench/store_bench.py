"""Card store: the group-committing writer's throughput with call-shaped writes, and lookups by
card number on a 10-million-card table (raw sqlite3 vs ccrouter's `CardStore.get`).

The big table is built once with raw sqlite3 batched inserts into `bench/cache/` (schema from
ccrouter's own migrations, indexes created after the load) and reused by later runs.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.progress import Progress, announce, fmt_duration
from bench.stats import summary_ms

CACHE = Path(__file__).resolve().parent / "cache"
BATCH = 50_000


def _number(serial: int) -> str:
    from ccrouter.calls.model.cards import card_number

    return card_number(serial)


async def _migrated(path: Path) -> None:
    from ccrouter.db.engine import make_engine
    from ccrouter.db.migrate import migrate

    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


def build_big_table(cards: int, log: Any = print) -> Path:
    """`bench/cache/cards-<N>.db` with `cards` cards (built once; later runs reuse it)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"cards-{cards}.db"
    if path.exists():
        return path
    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    asyncio.run(_migrated(tmp))
    conn = sqlite3.connect(tmp, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='cards' "
        "AND sql IS NOT NULL").fetchall()  # fmt: skip
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    rng = random.Random(1)
    started = time.monotonic()
    cols = ("number, kind, state, uniqueid, linkedid, caller_num, started_at, queue, outcome, "
            "operator, talk_s, created_at, updated_at")  # fmt: skip
    sql = f"INSERT INTO cards ({cols}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
    t0 = 1_700_000_000.0
    announce(f"  building {path.name}", None,
             f"{cards:,} cards, then {len(indexes)} indexes, once (cached in {CACHE}); "
             "the ETA follows the first batch")
    progress = Progress(f"  building {path.name}", total=cards, unit="cards")
    for base in range(1, cards + 1, BATCH):
        rows = []
        for serial in range(base, min(base + BATCH, cards + 1)):
            at = t0 + serial * 0.3
            uid = f"{int(at)}.{serial}"
            rows.append((_number(serial), "inbound", "closed", uid, uid,
                         f"7900{rng.randrange(10**7):07d}", at, "wallet-ru", "answered",
                         "Operator", 60, at, at))  # fmt: skip
        conn.execute("BEGIN")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
        progress.update(base + len(rows) - 1)
    progress.finish()
    for i, (name, ddl) in enumerate(indexes, 1):
        log(f"  building {path.name}: index {name} ({i}/{len(indexes)}, "
            f"{fmt_duration(time.monotonic() - started)} so far)")  # fmt: skip
        conn.execute(ddl)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    tmp.rename(path)
    return path


def lookups_raw(path: Path, numbers: list[str]) -> dict[str, float]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    times = []
    for n in numbers:
        t = time.perf_counter()
        row = conn.execute("SELECT * FROM cards WHERE number = ?", (n,)).fetchone()
        times.append(time.perf_counter() - t)
        assert row is not None
    conn.close()
    return summary_ms(times)


async def lookups_store(path: Path, numbers: list[str], sqlalchemy_path: bool = False
                        ) -> dict[str, float]:  # fmt: skip
    """`CardStore.get` as the daemon runs it; `sqlalchemy_path` measures the engine query it
    falls back to (for in-memory databases), i.e. the lookup before its point-read path."""
    from ccrouter.calls.store import CardStore
    from ccrouter.db.engine import make_engine

    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    store = CardStore(engine)
    if sqlalchemy_path:
        await store.close()
    try:
        await store.get(numbers[0])  # connect, compile the statement
        times = []
        for n in numbers:
            t = time.perf_counter()
            card = await store.get(n)
            times.append(time.perf_counter() - t)
            assert card is not None
    finally:
        await store.close()
        await engine.dispose()
    return summary_ms(times)


async def writer_throughput(calls: int = 20_000) -> dict[str, Any]:
    """Call-shaped writes through CardWriter into a fresh SQLite database (`writer_load`)."""
    with tempfile.TemporaryDirectory(prefix="ccrouter-bench-") as d:
        return await writer_load(f"sqlite+aiosqlite:///{d}/w.db", calls)


async def writer_load(url: str, calls: int, started_at: float = 1.0) -> dict[str, Any]:
    """Call-shaped writes (an insert then 5 updates per card, interleaved across 200 live calls)
    through CardWriter into the (empty) database at `url`; cards and writes committed per
    second."""
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
    started = time.perf_counter()
    submitted = 0
    for serial in range(1, calls + 1):
        number = _number(10_000_000 + serial)
        writer.submit(CardWrite(number, {"kind": "inbound", "state": "open",
                                         "uniqueid": f"1.{serial}", "started_at": started_at},
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
            await asyncio.sleep(0)  # let the writer commit, like the event loop would
    await writer.flush()
    elapsed = time.perf_counter() - started
    stats = writer.stats
    await writer.close()
    await task
    await engine.dispose()
    return {"cards": calls, "writes": submitted, "seconds": round(elapsed, 2),
            "cards_per_s": round(calls / elapsed), "writes_per_s": round(submitted / elapsed),
            "commits": stats.commits}  # fmt: skip


def measure(cards: int = 10_000_000, lookups: int = 3000, log: Any = print) -> dict[str, Any]:
    path = build_big_table(cards, log)
    rng = random.Random(3)
    numbers = [_number(rng.randrange(1, cards + 1)) for _ in range(lookups)]
    raw = lookups_raw(path, numbers)
    store = asyncio.run(lookups_store(path, numbers))
    via_engine = asyncio.run(lookups_store(path, numbers, sqlalchemy_path=True))
    writes = asyncio.run(writer_throughput())
    return {"cards_in_table": cards, "lookup_raw_sqlite3": raw, "lookup_cardstore": store,
            "lookup_cardstore_via_engine": via_engine, "writer": writes}  # fmt: skip

"""PostgreSQL vs SQLite for the card store (a measurement script, not part of `make bench`):

    python -m bench.pg_compare [--cards 100000] [--lookups 3000] [--calls 20000] [--repeat 5]

Starts its own PostgreSQL (tests/pg.py, with PostgreSQL's durable defaults: fsync on,
synchronous_commit on) and, on each backend: the card writer's throughput with call-shaped
writes (`bench.store_bench`'s load: an insert then 5 updates per card across 200 live calls)
and `CardStore.get` p50/p99 on a table of `--cards` cards; on PostgreSQL also the writer with
its batch through SQLAlchemy Core's executemany instead of the asyncpg fast path, and the
lookup through SQLAlchemy's query instead of the prepared asyncpg statement. Prints JSON.
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
from bench.store_bench import writer_load

T0 = 1_700_000_000.0


def _number(serial: int) -> str:
    from ccrouter.calls.model.cards import card_number

    return card_number(serial)


async def writer_throughput(url: str, calls: int) -> dict[str, Any]:
    return await writer_load(url, calls, started_at=T0)


async def _sqlalchemy_commit(engine: Any, batch: list[Any], *, now: float, due: int | None
                             ) -> int:  # fmt: skip
    """The baseline the fast path replaces: the same batch through SQLAlchemy Core's
    executemany (insertmanyvalues for the INSERT, one UPDATE per row for the updates)."""
    import sqlalchemy as sa

    from ccrouter.calls.numbers import bump_statement
    from ccrouter.db.tables import cards

    inserts = [e for e in batch if e.insert]
    updates = [e for e in batch if not e.insert]
    async with engine.begin() as conn:
        if inserts:
            cols = sorted(set().union(*(e.fields for e in inserts)))
            await conn.execute(cards.insert(), [
                {"number": e.number, **{c: e.fields.get(c) for c in cols}, "created_at": now,
                 "updated_at": now} for e in inserts])  # fmt: skip
        shapes: dict[tuple[str, ...], list[Any]] = {}
        for e in updates:
            shapes.setdefault(tuple(sorted(e.fields)), []).append(e)
        for shape, group in shapes.items():
            stmt = cards.update().where(cards.c.number == sa.bindparam("b_number")).values(
                {c: sa.bindparam(f"b_{c}") for c in (*shape, "updated_at")})
            await conn.execute(stmt, [
                {"b_number": e.number, "b_updated_at": now,
                 **{f"b_{c}": e.fields[c] for c in shape}} for e in group])  # fmt: skip
        if due is not None:
            await conn.execute(bump_statement(due))
    return len(batch)


async def writer_via_sqlalchemy(url: str, calls: int) -> dict[str, Any]:
    import ccrouter.calls.card_commit as card_commit

    fast = card_commit.commit_batch_pg
    card_commit.commit_batch_pg = _sqlalchemy_commit  # type: ignore[assignment]
    try:
        return await writer_throughput(url, calls)
    finally:
        card_commit.commit_batch_pg = fast


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


async def _on_fresh(server: Any, fn: Any, calls: int) -> dict[str, Any]:
    result: dict[str, Any] = await fn(await server.database(), calls)
    return result


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
            # Writers interleaved, `--repeat` rounds (the machine is shared): every round's
            # cards/s is kept, each on a fresh database.
            runs: dict[str, list[dict[str, Any]]] = {}
            for _ in range(args.repeat):
                with tempfile.TemporaryDirectory(prefix="ccrouter-pgcmp-w-") as wd:
                    for name, make in (
                        ("sqlite_writer", lambda: writer_throughput(
                            f"sqlite+aiosqlite:///{wd}/w.db", args.calls)),
                        ("postgresql_writer", lambda: _on_fresh(server, writer_throughput,
                                                                args.calls)),
                        ("postgresql_writer_via_sqlalchemy_core", lambda: _on_fresh(
                            server, writer_via_sqlalchemy, args.calls)),
                    ):  # fmt: skip
                        runs.setdefault(name, []).append(await make())
            for name, results in runs.items():
                rates = sorted(r["cards_per_s"] for r in results)
                out[name] = {**results[0], "cards_per_s_runs": rates,
                             "cards_per_s_median": rates[len(rates) // 2]}  # fmt: skip
            for name, (_w_url, l_url) in urls.items():
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
    parser.add_argument("--repeat", type=int, default=5)
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=1))

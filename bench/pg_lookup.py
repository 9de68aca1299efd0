"""Card lookups by number on a 10-million-card table in PostgreSQL (`make bench`, section `pg`).

The table is loaded inside the server in one statement (`INSERT ... SELECT FROM
generate_series`): no row crosses the socket. The card numbers are the real ones (zero-padded
serial + Damm check digit, `card_number`): the check digit comes from two small lookup tables
computed here with ccrouter's own Damm table — the interim digit of the serial's high part
(serial // 10 000) and the final digit for each (interim, low four digits) — since the Damm
interim of a leading zero is 0, that is the digit of the whole serial. A sample is checked
against `card_number` after the load. The lookup index (`ix_cards_number`, unique) is built
after the load, as a bulk load does; the table's other indexes (the migrations' schema) are
not built unless `other_indexes=True`: a lookup by number does not touch them, and they would
add about a minute per 10 M cards to every run.

`CardStore.get` (ccrouter's lookup: one prepared statement on a pooled asyncpg connection) is
timed against a bare asyncpg `fetchrow` of the same statement on one connection.
"""

from __future__ import annotations

import random
import time
from typing import Any

from bench.progress import announce, fmt_duration
from bench.stats import summary_ms

T0 = 1_700_000_000.0
SPLIT = 10_000


def _damm_tables(cards: int) -> tuple[list[tuple[int, int]], list[tuple[int, int, int]]]:
    from ccrouter.calls.model.cards import _DAMM

    def fold(state: int, digits: str) -> int:
        for ch in digits:
            state = _DAMM[state][ord(ch) - 48]
        return state

    high = [(h, fold(0, str(h))) for h in range(cards // SPLIT + 1)]
    low = [(s, lo, fold(s, f"{lo:04d}")) for s in range(10) for lo in range(SPLIT)]
    return high, low


LOAD_SQL = """
INSERT INTO cards (number, kind, state, uniqueid, linkedid, caller_num, started_at, queue,
                   outcome, operator, talk_s, created_at, updated_at)
SELECT lpad(g.s::text, greatest({digits}, length(g.s::text)), '0') || lo.d::text,
       'inbound', 'closed',
       (floor({t0} + g.s * 0.3))::bigint::text || '.' || g.s,
       (floor({t0} + g.s * 0.3))::bigint::text || '.' || g.s,
       '7900' || lpad(((g.s::bigint * 7919) % 10000000)::text, 7, '0'),
       {t0} + g.s * 0.3, 'wallet-ru', 'answered', 'Operator', 60,
       {t0} + g.s * 0.3, {t0} + g.s * 0.3
FROM generate_series(1, {cards}) AS g(s)
JOIN bench_damm_high hi ON hi.h = g.s / {split}
JOIN bench_damm_low lo ON lo.st = hi.st AND lo.l = g.s % {split}
"""


async def fill(dsn: str, cards: int, *, other_indexes: bool = False, log: Any = print
               ) -> dict[str, float]:  # fmt: skip
    """Load `cards` cards into the (migrated, empty) database at `dsn`; seconds per phase."""
    import asyncpg

    from ccrouter.calls.model.cards import CARD_SERIAL_DIGITS, card_number

    conn = await asyncpg.connect(dsn)
    took: dict[str, float] = {}
    try:
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'cards' "
            "AND indexname <> 'pk_cards'")  # fmt: skip
        for row in indexes:
            await conn.execute(f'DROP INDEX "{row["indexname"]}"')
        high, low = _damm_tables(cards)
        await conn.execute("CREATE TEMP TABLE bench_damm_high (h int PRIMARY KEY, st int)")
        await conn.execute("CREATE TEMP TABLE bench_damm_low (st int, l int, d int, "
                           "PRIMARY KEY (st, l))")  # fmt: skip
        await conn.copy_records_to_table("bench_damm_high", records=high)
        await conn.copy_records_to_table("bench_damm_low", records=low)
        await conn.execute("ANALYZE bench_damm_high; ANALYZE bench_damm_low")
        started = time.monotonic()
        log(f"  pg: loading {cards:,} cards (INSERT ... SELECT FROM generate_series) ...")
        await conn.execute("SET maintenance_work_mem = '512MB'")
        await conn.execute(LOAD_SQL.format(digits=CARD_SERIAL_DIGITS, t0=T0, cards=cards,
                                           split=SPLIT))  # fmt: skip
        took["load_s"] = round(time.monotonic() - started, 1)
        wanted = [r for r in indexes if other_indexes or r["indexname"] == "ix_cards_number"]
        for i, row in enumerate(wanted, 1):
            t = time.monotonic()
            log(f"  pg: index {row['indexname']} ({i}/{len(wanted)}, "
                f"{fmt_duration(t - started)} so far)")  # fmt: skip
            await conn.execute(row["indexdef"])
        took["indexes_s"] = round(time.monotonic() - started - took["load_s"], 1)
        await conn.execute("VACUUM ANALYZE cards")
        took["total_s"] = round(time.monotonic() - started, 1)
        rng = random.Random(7)
        for serial in [1, 9_999, 10_000, cards, *(rng.randrange(1, cards + 1) for _ in range(200))]:
            uid = await conn.fetchval("SELECT uniqueid FROM cards WHERE number = $1",
                                      card_number(serial))  # fmt: skip
            if uid is None or not uid.endswith(f".{serial}"):
                raise AssertionError(f"card {card_number(serial)} (serial {serial}) not loaded "
                                     f"right: uniqueid {uid!r}")  # fmt: skip
    finally:
        await conn.close()
    return took


async def lookups(url: str, dsn: str, numbers: list[str]) -> dict[str, Any]:
    """`CardStore.get` and a bare asyncpg fetchrow, interleaved in 5 rounds."""
    import asyncpg

    from ccrouter.calls.store import CardStore
    from ccrouter.db.engine import make_engine

    engine = make_engine(url)
    store = CardStore(engine)
    raw = await asyncpg.connect(dsn)
    sql = "SELECT * FROM cards WHERE number = $1"
    store_t: list[float] = []
    raw_t: list[float] = []
    try:
        await store.get(numbers[0])
        await raw.fetchrow(sql, numbers[0])
        chunk = max(1, len(numbers) // 5)
        for i in range(0, len(numbers), chunk):
            for n in numbers[i:i + chunk]:
                t = time.perf_counter()
                card = await store.get(n)
                store_t.append(time.perf_counter() - t)
                assert card is not None, n
            for n in numbers[i:i + chunk]:
                t = time.perf_counter()
                row = await raw.fetchrow(sql, n)
                raw_t.append(time.perf_counter() - t)
                assert row is not None, n
    finally:
        await raw.close()
        await store.close()
        await engine.dispose()
    return {"cardstore": summary_ms(store_t), "raw_asyncpg": summary_ms(raw_t)}


async def measure(server: Any, cards: int, n_lookups: int, log: Any = print) -> dict[str, Any]:
    from ccrouter.calls.model.cards import card_number

    announce("  pg: card lookups", None,
             f"{cards:,} cards loaded into a fresh PostgreSQL (1.5-2 min per 10 M here: the "
             f"load, the number index, VACUUM ANALYZE), {n_lookups:,} lookups")  # fmt: skip
    url = await server.database(migrated=True)
    name = url.rsplit("/", 1)[1]
    took = await fill(server.dsn(name), cards, log=log)
    rng = random.Random(3)
    numbers = [card_number(rng.randrange(1, cards + 1)) for _ in range(n_lookups)]
    return {"cards_in_table": cards, "lookups": n_lookups, **took,
            **await lookups(url, server.dsn(name), numbers)}  # fmt: skip


async def section(cards: int, n_lookups: int, claim_requests: int) -> dict[str, Any]:
    """`make bench`'s `pg` section: its own PostgreSQL (durable defaults), card lookups on
    `cards` cards, then callback claims by 3 contending instances (bench/claim_bench.py), three
    rounds of `claim_requests` requests."""
    from bench import claim_bench
    from tests.pg import PgServer, PgUnavailable

    try:
        server = PgServer.start(durable=True)
    except PgUnavailable as exc:
        return {"skipped": str(exc)}
    try:
        lookup = await measure(server, cards, n_lookups)
        rounds = [await claim_bench.measure(server, claim_requests, instances=3, concurrency=4)
                  for _ in range(3)]  # fmt: skip
    finally:
        server.stop()
    # the machine is shared: three rounds, the median's figures, every round's rate and the
    # double claims of all of them
    rates = sorted(r["claims_per_s"] for r in rounds)
    median = next(r for r in rounds if r["claims_per_s"] == rates[1])
    claims = {**median, "claims_per_s_rounds": rates,
              "double_claims": sum(r["double_claims"] for r in rounds),
              "claimed_all": all(r["claimed"] == r["requests"] for r in rounds)}  # fmt: skip
    return {"lookup": lookup, "claims": claims}

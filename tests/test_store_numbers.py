"""Card numbers: synchronous allocation from blocks reserved in the database, never reused."""

from __future__ import annotations

import asyncio
import inspect
import itertools
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from ccrouter.calls.model.cards import CardWrite, card_number, card_serial, is_valid_card_number
from ccrouter.calls.numbers import RESERVED_KEY, CardNumbers, Reservation, bump_statement
from ccrouter.calls.writer import CardWriter
from ccrouter.config import DatabaseSettings
from ccrouter.db.engine import make_engine
from ccrouter.db.migrate import migrate

SETTINGS = DatabaseSettings(commit_window_ms=5, write_retry_s=0.02)


@pytest.fixture
def url(db_url: str) -> str:
    """Each test on a SQLite file and on a real PostgreSQL database."""
    return db_url


@pytest.fixture
async def engine(url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(url)
    await migrate(eng)
    yield eng
    await eng.dispose()


async def stored_mark(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        query = sa.text("SELECT value FROM meta WHERE key = :k")
        return int((await conn.execute(query, {"k": RESERVED_KEY})).scalar_one())


async def test_first_numbers_on_an_empty_database(engine: AsyncEngine) -> None:
    numbers = await CardNumbers.open(engine, block=100)
    assert not inspect.iscoroutinefunction(numbers.next)
    got = [numbers.next() for _ in range(5)]
    assert got == [card_number(s) for s in range(1, 6)]
    assert got[0] == "0000013"  # six-digit serial + Damm check digit
    assert all(is_valid_card_number(n) for n in got)
    assert await stored_mark(engine) == 100


async def test_half_used_block_is_persisted_by_the_writer(engine: AsyncEngine) -> None:
    numbers = await CardNumbers.open(engine, block=10)
    writer = CardWriter(engine, SETTINGS, numbers=numbers)
    task = asyncio.create_task(writer.run())
    try:
        for _ in range(5):
            assert numbers.reservation_due() is None
            numbers.next()
        numbers.next()  # serial 6: less than half a block left
        assert numbers.reservation_due() == Reservation(size=10, floor=6)
        async with asyncio.timeout(5):  # no card write needed: the writer wakes for it
            while numbers.reservation_due() is not None:
                await asyncio.sleep(0.005)
        assert await stored_mark(engine) == 20  # the next block, right after the first
        assert [card_serial(numbers.next()) for _ in range(14)] == list(range(7, 21))
    finally:
        await writer.close()
        await task


async def test_never_reused_after_a_crash(url: str) -> None:
    engine = make_engine(url)
    await migrate(engine)
    numbers = await CardNumbers.open(engine, block=10)
    writer = CardWriter(engine, SETTINGS, numbers=numbers)
    task = asyncio.create_task(writer.run())
    handed_out: list[str] = []
    for i in range(37):
        number = numbers.next()
        handed_out.append(number)
        writer.submit(CardWrite(number, {"state": "open"}, insert=True))
        if i % 9 == 0:
            await writer.flush()
    await writer.flush()
    handed_out += [numbers.next() for _ in range(3)]  # told to callers, no card stored yet
    # crash: no close(), the writer dies, the engine goes away
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await engine.dispose()

    engine = make_engine(url)
    try:
        await migrate(engine)
        again = await CardNumbers.open(engine, block=10)
        fresh = [again.next() for _ in range(25)]
    finally:
        await engine.dispose()
    assert not set(fresh) & set(handed_out)
    assert min(card_serial(n) for n in fresh) > max(card_serial(n) for n in handed_out)
    assert all(is_valid_card_number(n) for n in fresh + handed_out)
    assert len(set(fresh + handed_out)) == len(fresh + handed_out)


async def test_crash_inside_the_first_block_leaves_a_gap(url: str) -> None:
    engine = make_engine(url)
    await migrate(engine)
    first = await CardNumbers.open(engine, block=10)
    used = [first.next() for _ in range(3)]
    await engine.dispose()  # crash: nothing else written
    engine = make_engine(url)
    try:
        second = await CardNumbers.open(engine, block=10)
        assert card_serial(second.next()) == 11 > card_serial(used[-1])
    finally:
        await engine.dispose()


async def test_starts_above_the_highest_stored_card(engine: AsyncEngine) -> None:
    """Cards stored without a reservation (other writers) still push the start up, and
    longer numbers count as larger ("10000003" > "9999994")."""
    writer = CardWriter(engine, SETTINGS)
    for serial in (999_999, 1_000_000, 5):
        writer.submit(CardWrite(card_number(serial), {}, insert=True))
    await writer.close()
    numbers = await CardNumbers.open(engine, block=10)
    assert card_serial(numbers.next()) == 1_000_001


async def test_beyond_the_reservation_is_logged_not_blocked(engine: AsyncEngine) -> None:
    numbers = await CardNumbers.open(engine, block=4)  # no writer persists more blocks
    with capture_logs() as logs:
        got = [numbers.next() for _ in range(6)]
    assert [card_serial(n) for n in got] == [1, 2, 3, 4, 5, 6]
    beyond = [e for e in logs if e["event"] == "card_numbers_beyond_reservation"]
    assert [(e["serial"], e["reserved"], e["log_level"]) for e in beyond] == [(5, 4, "error")]
    assert beyond[0]["block"] == 8  # more headroom asked for from now on
    # Asked for at serial 3 (a block of 4); the block taken goes above the 6 handed out.
    assert numbers.reservation_due() == Reservation(size=8, floor=6)


async def test_block_grows_when_calls_outrun_the_commits(engine: AsyncEngine) -> None:
    """Numbers handed out faster than half a block per commit: each overrun doubles the block,
    so the next reservations keep ahead."""
    numbers = await CardNumbers.open(engine, block=4)
    overruns, mark = 0, 4
    handed: list[str] = []
    with capture_logs() as logs:
        for _ in range(200):
            for _ in range(5):
                handed.append(numbers.next())
            due = numbers.reservation_due()
            if due is not None:  # one commit per five calls persists what was asked for
                mark = max(mark, due.floor) + due.size  # what the bump statement stores
                numbers.reserved(mark, due.size)
        overruns = len([e for e in logs if e["event"] == "card_numbers_beyond_reservation"])
    assert 1 <= overruns <= 2 and len(set(handed)) == 1000


async def test_corrupt_mark_is_a_clear_error(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            sa.text("INSERT INTO meta (key, value) VALUES (:k, 'twelve')"), {"k": RESERVED_KEY}
        )
    with pytest.raises(RuntimeError, match=r"card_serial_reserved.*'twelve'"):
        await CardNumbers.open(engine)


def test_bad_block_size() -> None:
    with pytest.raises(ValueError, match="block must be >= 2"):
        CardNumbers(1, 10, block=1)


async def test_processes_opening_together_get_distinct_blocks(url: str) -> None:
    """Several processes (engines) reserving at the same moment: the mark is read under a
    lock (FOR UPDATE on PostgreSQL, the write lock on SQLite), so no two blocks overlap."""
    setup = make_engine(url)
    await migrate(setup)
    await setup.dispose()
    engines = [make_engine(url) for _ in range(4)]
    try:
        opened = await asyncio.gather(*(CardNumbers.open(e, block=50) for e in engines))
    finally:
        for e in engines:
            await e.dispose()
    firsts = sorted(n.next() for n in opened)
    serials = sorted(int(n[:-1]) for n in firsts)
    assert [b - a for a, b in itertools.pairwise(serials)] == [50, 50, 50]


async def test_the_bump_hands_disjoint_blocks_to_concurrent_processes(url: str) -> None:
    """The statement every block is taken with (the first at open(), the rest in the writer's
    commits): 4 engines x 25 blocks, taken concurrently, cover 1..1000 exactly once; the stored
    mark is the last serial handed out."""
    setup = make_engine(url)
    await migrate(setup)
    await CardNumbers.open(setup, block=10)  # the mark's row; serials 1..10
    engines = [make_engine(url) for _ in range(4)]
    try:
        async def take(engine: AsyncEngine) -> list[tuple[int, int]]:
            out = []
            for _ in range(25):
                async with engine.begin() as conn:
                    last = int((await conn.execute(bump_statement(Reservation(10)))).scalar_one())
                out.append((last - 9, last))
            return out

        blocks = [b for got in await asyncio.gather(*(take(e) for e in engines)) for b in got]
        assert await stored_mark(setup) == 1010
    finally:
        for e in [setup, *engines]:
            await e.dispose()
    serials = sorted(s for first, last in blocks for s in range(first, last + 1))
    assert serials == list(range(11, 1011))


async def test_instances_sharing_a_database_never_hand_out_a_number_twice(url: str) -> None:
    """Three instances (engines, writers) on one database, each running through many blocks
    while the others do: every block is taken by the atomic bump above the shared mark, so
    no number is handed out twice (raising the mark to `serial + block`, as one box did,
    gave the second instance the first one's next numbers)."""
    setup = make_engine(url)
    await migrate(setup)
    engines = [make_engine(url) for _ in range(3)]
    numbers = [await CardNumbers.open(e, block=8) for e in engines]
    writers = [CardWriter(e, SETTINGS, numbers=n) for e, n in zip(engines, numbers, strict=True)]
    tasks = [asyncio.create_task(w.run()) for w in writers]
    handed: list[str] = []
    try:
        for _ in range(60):
            for n, w in zip(numbers, writers, strict=True):
                for _ in range(3):
                    number = n.next()
                    handed.append(number)
                    w.submit(CardWrite(number, {"state": "open"}, insert=True))
            await asyncio.gather(*(w.flush() for w in writers))
        assert all(n.reservation_due() is None for n in numbers)
        assert await stored_mark(setup) >= max(card_serial(h) for h in handed)
    finally:
        for w in writers:
            await w.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        for e in [setup, *engines]:
            await e.dispose()
    assert len(handed) == 540 and len(set(handed)) == 540

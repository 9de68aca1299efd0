"""Callback requests in SQLite: merge upsert, claims that cannot be taken twice, cancellation."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.callbacks.model import Kind, State
from ccrouter.callbacks.store import CallbackStore, OpenRequestExists, Transactions
from ccrouter.db.engine import make_engine
from ccrouter.db.migrate import migrate


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'cb.db'}")
    await migrate(eng)
    yield eng
    await eng.dispose()


async def test_second_abandon_merges_keeping_the_earliest_place(engine: AsyncEngine) -> None:
    store = CallbackStore(engine)
    first = await store.add(number="79001", kind=Kind.CALLBACK, target="wallet-ru", now=10.0,
                            place_at=5.0, card="c1")  # fmt: skip
    again = await store.add(number="79001", kind=Kind.CALLBACK, target="wallet-ru", now=20.0,
                            place_at=3.0, card="c2")  # fmt: skip
    assert (first.merged, again.merged, again.id, again.card) == (False, True, first.id, "c1")
    (r,) = await store.pending()
    assert (r.place_at, r.abandons, r.card) == (3.0, 2, "c1")
    # the first call's abandon once more (a new cluster holder replaying the gap): not counted
    replayed = await store.add(number="79001", kind=Kind.CALLBACK, target="wallet-ru",
                               now=25.0, place_at=5.0, card="c1")  # fmt: skip
    assert (replayed.id, replayed.card) == (first.id, "c1")
    (r,) = await store.pending()
    assert (r.place_at, r.abandons) == (3.0, 2)
    with pytest.raises(OpenRequestExists):
        await store.add(number="79001", kind=Kind.OUTBOUND, target="wallet-ru", now=30.0,
                        place_at=30.0)  # fmt: skip


async def test_a_request_is_claimed_once_even_by_two_dispatchers(engine: AsyncEngine) -> None:
    one, two = CallbackStore(engine), CallbackStore(engine)
    await one.add(number="79001", kind=Kind.CALLBACK, target="wallet-ru", now=1.0, place_at=1.0)
    (seen_by_one,) = await one.pending()
    (seen_by_two,) = await two.pending()
    got = await asyncio.gather(
        one.claim(seen_by_one, card="a", action_id="x1", channel_id="u1", target="wallet-ru",
                  now=2.0),
        two.claim(seen_by_two, card="b", action_id="x2", channel_id="u2", target="wallet-ru",
                  now=2.0),
    )  # fmt: skip
    assert sum(a is not None for a in got) == 1
    assert len(await one.attempts()) == 1
    (req,) = await one.find()
    assert (req.state, req.attempts) == ("dialing", 1)
    # a closed request is free for a new one with the same number
    attempt = next(a for a in got if a is not None)
    await one.finish(attempt.id, "connected", 3.0, state=State.DONE, reason="connected")
    fresh = await one.add(number="79001", kind=Kind.CALLBACK, target="wallet-ru", now=4.0,
                          place_at=4.0)  # fmt: skip
    assert fresh.merged is False and fresh.id != req.id


async def test_cancel_only_touches_pending_requests(engine: AsyncEngine) -> None:
    store = CallbackStore(engine)
    a = await store.add(number="79001", kind=Kind.CALLBACK, target="wallet-ru", now=1.0,
                        place_at=1.0, card="c1")  # fmt: skip
    b = await store.add(number="79002", kind=Kind.CALLBACK, target="wallet-ru", now=1.0,
                        place_at=1.0)  # fmt: skip
    (rb,) = [r for r in await store.pending() if r.id == b.id]
    assert await store.claim(rb, card="x", action_id="x", channel_id="u", target="wallet-ru",
                             now=2.0) is not None  # fmt: skip
    assert await store.cancel_open("79002", "caller_got_through", 3.0) == []  # dialing: kept
    (cancelled,) = await store.cancel_open("79001", "caller_got_through", 3.0)
    assert (cancelled.id, cancelled.state, cancelled.reason) == (a.id, "cancelled",
                                                                 "caller_got_through")
    assert await store.cancel(a.id, "by_user", 4.0) is None  # already cancelled


@pytest.mark.parametrize("url", ["file", "memory", "postgresql"])
async def test_attempt_lifecycle_on_the_dispatcher_connection_and_in_memory(
    tmp_path: Path, url: str, request: pytest.FixtureRequest
) -> None:
    """claim -> answered -> finish (retry) -> claim -> release: the same rows whether the
    dispatcher's transactions run on their own connection (a file), in SQLAlchemy's, or on
    PostgreSQL."""
    if url == "postgresql":
        eng = make_engine(await request.getfixturevalue("pg_server").database())
    else:
        eng = make_engine("sqlite+aiosqlite:///:memory:" if url == "memory"
                          else f"sqlite+aiosqlite:///{tmp_path / 'cb.db'}")  # fmt: skip
    await migrate(eng)
    store = CallbackStore(eng)
    try:
        added = await store.add(number="79001", kind=Kind.CALLBACK, target="wallet-ru",
                                now=1.0, place_at=1.0, card="c1")  # fmt: skip
        (r,) = await store.pending()
        first = await store.claim(r, card="k1", action_id="a1", channel_id="u1",
                                  target="wallet-ru", now=2.0)  # fmt: skip
        assert first is not None
        assert (first.request_id, first.n, first.card, first.action_id, first.channel_id,
                first.state, first.started_at) == (added.id, 1, "k1", "a1", "u1", "dialing",
                                                   2.0)  # fmt: skip
        assert await store.claim(r, card="k9", action_id="a9", channel_id="u9",
                                 target="wallet-ru", now=2.0) is None  # a stale read loses
        await store.attempt_answered(first.id)
        ((open_attempt, _),) = await store.open_attempts()
        assert open_attempt.state == "answered"
        await store.finish(first.id, "abandoned", 3.0, state=State.PENDING, due_at=9.0,
                           reason="abandoned")  # fmt: skip
        (r,) = await store.pending()
        assert (r.attempts, r.due_at, r.reason) == (1, 9.0, "abandoned")
        second = await store.claim(r, card="k2", action_id="a2", channel_id="u2",
                                   target="wallet-ru", now=10.0)  # fmt: skip
        assert second is not None and second.n == 2
        await store.release(second.id, 11.0, due_at=11.0)
        (r,) = await store.pending()
        assert (r.state, r.attempts, r.due_at, r.reason) == ("pending", 1, 11.0,
                                                             "operator_missed")
        assert [(a.n, a.state) for a in await store.attempts(added.id)] == [(1, "abandoned")]
        with pytest.raises(LookupError, match="no callback attempt with id 4242"):
            await store.finish(4242, "lost", 12.0, state=State.FAILED)
        (r,) = await store.pending()
        assert r.reason == "operator_missed"  # the failed transaction changed nothing
    finally:
        await store.close()
        await eng.dispose()


async def test_a_claim_waits_for_another_writer_without_blocking_the_loop(
    sqlite_engine: AsyncEngine, tmp_path: Path
) -> None:
    store = CallbackStore(sqlite_engine)
    await store.add(number="79001", kind=Kind.CALLBACK, target="wallet-ru", now=1.0,
                    place_at=1.0)  # fmt: skip
    (r,) = await store.pending()
    other = sqlite3.connect(tmp_path / "cb.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # e.g. the card writer's group commit
    try:
        claim = asyncio.ensure_future(store.claim(r, card="k", action_id="a", channel_id="u",
                                                  target="wallet-ru", now=2.0))  # fmt: skip
        started = time.monotonic()
        await asyncio.sleep(0.03)  # the loop keeps running while the claim waits for the lock
        assert not claim.done() and time.monotonic() - started < 0.5
        other.execute("COMMIT")
        attempt = await asyncio.wait_for(claim, 2)
        assert attempt is not None and attempt.n == 1
    finally:
        other.close()
        await store.close()


async def test_a_lock_held_past_the_busy_timeout_fails_the_transaction(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    setup = sqlite3.connect(db, isolation_level=None)
    setup.execute("CREATE TABLE t (x)")
    setup.execute("BEGIN IMMEDIATE")
    tx = Transactions(str(db), busy_timeout_ms=30)
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await tx.run(lambda q: q("INSERT INTO t VALUES (?)", (1,)))
        setup.execute("COMMIT")
        assert await tx.run(lambda q: q("INSERT INTO t VALUES (?) RETURNING x", (2,))) == [(2,)]
    finally:
        await tx.close()
        setup.close()


async def test_a_request_another_transaction_holds_is_skipped_on_postgresql(pg_url: str) -> None:
    """Another instance's claim in flight (its row locked): this claim gives up at once (None)
    instead of queueing behind that commit; once the lock is gone, the request is claimable."""
    import asyncpg

    engine = make_engine(pg_url)
    await migrate(engine)
    store = CallbackStore(engine)
    other = await asyncpg.connect(pg_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await store.add(number="79001", kind=Kind.CALLBACK, target="wallet-ru", now=1.0,
                        place_at=1.0)  # fmt: skip
        (r,) = await store.pending()
        tx = other.transaction()
        await tx.start()
        await other.execute("SELECT id FROM callback_requests WHERE id = $1 FOR UPDATE", r.id)
        assert await store.claim(r, card="k", action_id="a", channel_id="u",
                                 target="wallet-ru", now=2.0) is None  # fmt: skip
        await tx.rollback()
        attempt = await store.claim(r, card="k", action_id="a", channel_id="u",
                                    target="wallet-ru", now=3.0)  # fmt: skip
        assert attempt is not None and attempt.n == 1
        assert [a.id for a in await store.attempts()] == [attempt.id]
    finally:
        await other.close()
        await store.close()
        await engine.dispose()


async def test_dispatchers_on_separate_postgresql_connections_claim_each_request_once(
    pg_url: str,
) -> None:
    """Three dispatchers, each with its own engine (as three processes would), race for the
    same 30 requests from one stale read: every request is claimed exactly once."""
    engines = [make_engine(pg_url) for _ in range(3)]
    await migrate(engines[0])
    stores = [CallbackStore(e) for e in engines]
    try:
        for i in range(30):
            await stores[0].add(number=f"7900{i:03d}", kind=Kind.CALLBACK, target="wallet-ru",
                                now=1.0, place_at=float(i))  # fmt: skip
        seen = await stores[0].pending()
        got = await asyncio.gather(*(
            s.claim(r, card=f"k{k}-{r.id}", action_id=f"a{k}-{r.id}", channel_id=f"u{k}-{r.id}",
                    target="wallet-ru", now=2.0)
            for r in seen for k, s in enumerate(stores)
        ))  # fmt: skip
        won = [a for a in got if a is not None]
        assert sorted(a.request_id for a in won) == sorted(r.id for r in seen)
        attempts = await stores[1].attempts()
        assert len(attempts) == 30 and {a.n for a in attempts} == {1}
        assert {r.state for r in await stores[2].find()} == {"dialing"}
    finally:
        for s, e in zip(stores, engines, strict=True):
            await s.close()
            await e.dispose()

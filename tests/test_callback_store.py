"""Callback requests in SQLite: merge upsert, claims that cannot be taken twice, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.callbacks.store import CallbackStore, OpenRequestExists
from ccrouter.domain.callback import Kind, State
from ccrouter.store.engine import make_engine
from ccrouter.store.migrate import migrate


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
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

"""Lease rows on a real database (SQLite file and PostgreSQL): one holder per node, a term per
change of holder, expiry on the database's clock, release hands over at once."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.cluster.lease import LeaseStore, lease_table
from ccrouter.cluster.model import LeaseTiming
from ccrouter.db.engine import make_engine
from ccrouter.db.migrate import migrate
from tests.conftest import is_pg


async def test_one_holder_per_node_until_it_lets_go(engine: AsyncEngine) -> None:
    a, b = LeaseStore(engine, "a", ttl_s=30), LeaseStore(engine, "b", ttl_s=30)
    assert await a.acquire("n1") == 1
    assert await b.acquire("n1") is None  # held, not expired
    assert await a.acquire("n1") is None  # a holder does not take its own node twice
    assert await b.acquire("n2") == 1  # another node is another lease
    assert await a.renew("n1", 1) and not await b.renew("n1", 1)
    assert not await a.renew("n1", 2)  # a term it never had
    await a.release("n1", 1)
    assert await b.acquire("n1") == 2  # at once: no waiting for expiry
    assert not await a.renew("n1", 1)  # the old holder learns it lost the node
    table = {lease.node: lease for lease in await lease_table(engine)}
    assert (table["n1"].holder, table["n1"].term) == ("b", 2)
    assert 25 < table["n1"].expires_in_s <= 30 and table["n1"].held_s >= 0


async def test_a_refused_acquire_says_who_holds_the_node(engine: AsyncEngine) -> None:
    """One call (one statement on PostgreSQL) tells a standby the term it took or the holder
    it did not take the node from."""
    a, b = LeaseStore(engine, "a", ttl_s=30), LeaseStore(engine, "b", ttl_s=30)
    assert await a.try_acquire("n1") == (1, None)
    assert await b.try_acquire("n1") == (None, "a")
    await a.release("n1", 1)
    assert await b.try_acquire("n1") == (2, None)  # released: taken at once
    assert await a.try_acquire("n1") == (None, "b")
    (lease,) = await lease_table(engine)
    assert (lease.holder, lease.term) == ("b", 2)


async def test_an_unrenewed_lease_expires_on_the_database_clock(engine: AsyncEngine) -> None:
    a, b = LeaseStore(engine, "a", ttl_s=0.3), LeaseStore(engine, "b", ttl_s=0.3)
    assert await a.acquire("n1") == 1
    for _ in range(4):  # renewed in time: kept
        await asyncio.sleep(0.1)
        assert await a.renew("n1", 1)
        assert await b.acquire("n1") is None
    await asyncio.sleep(0.45)  # a died: nobody renews
    assert await b.acquire("n1") == 2
    assert not await a.renew("n1", 1)
    (lease,) = await lease_table(engine)
    assert lease.holder == "b" and lease.expires_in_s > 0


async def test_many_instances_asking_at_once_get_one_holder(db_url: str) -> None:
    """Five instances (own engines, own connections) race for two nodes: one winner each."""
    setup = make_engine(db_url)
    await migrate(setup)
    engines = [make_engine(db_url) for _ in range(5)]
    try:
        stores = [LeaseStore(e, f"i{k}", ttl_s=30) for k, e in enumerate(engines)]
        for node in ("n1", "n2"):
            terms = await asyncio.gather(*(s.acquire(node) for s in stores),
                                         return_exceptions=True)  # fmt: skip
            won = [t for t in terms if isinstance(t, int)]
            errors = [t for t in terms if isinstance(t, BaseException)]
            if not is_pg(db_url):  # SQLite: a writer may meet the lock; it asks again later
                errors = [e for e in errors if "locked" not in str(e)]
            assert won == [1] and not errors, terms
    finally:
        for e in [setup, *engines]:
            await e.dispose()


def test_lease_timing_leaves_a_margin_between_demotion_and_takeover() -> None:
    t = LeaseTiming.of(5.0)
    assert t.renew_s < t.demote_s < t.ttl_s  # a holder gives up before its row can expire
    assert t.ttl_s + t.poll_s <= 5.0  # a dead holder's node is taken within lease_s

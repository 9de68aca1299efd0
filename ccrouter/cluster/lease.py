"""Lease rows: which instance serves which Asterisk node, until when (the database's clock).

One row per node. `acquire` takes a free row (expired, released, or never held) in one
conditional upsert and bumps its `term`; `renew` extends it only for the holder of that term;
`release` expires it at once (a clean stop hands the node over without waiting). Times come
from the database server, so instances' clocks never matter. `try_acquire` also says who holds
a row it could not take — on PostgreSQL in the same statement (a standby asks every `poll_s`).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.db.dialect import db_now, insert_for
from ccrouter.db.tables import leases


@dataclass(frozen=True, slots=True)
class Lease:
    node: str
    holder: str
    term: int
    expires_in_s: float
    """Negative when it has expired (nobody serves the node)."""
    held_s: float


class LeaseStore:
    def __init__(self, engine: AsyncEngine, holder: str, ttl_s: float) -> None:
        self._engine = engine
        self.holder = holder
        self._ttl = ttl_s

    async def acquire(self, node: str) -> int | None:
        """The lease of `node` for this holder when it is free: its new term, else None."""
        term, _ = await self.try_acquire(node)
        return term

    async def try_acquire(self, node: str) -> tuple[int | None, str | None]:
        """(the new term, None) when `node`'s lease was free and is now this holder's, else
        (None, the instance holding it; None when the row expired in the meantime)."""
        async with self._engine.begin() as conn:
            now = db_now(conn)
            stmt = insert_for(conn, leases).values(
                node=node, holder=self.holder, term=1, expires_at=now + self._ttl,
                acquired_at=now)
            stmt = stmt.on_conflict_do_update(
                index_elements=[leases.c.node],
                set_={"holder": stmt.excluded.holder, "term": leases.c.term + 1,
                      "expires_at": stmt.excluded.expires_at,
                      "acquired_at": stmt.excluded.acquired_at},
                where=leases.c.expires_at < now,
            ).returning(leases.c.term)
            live = sa.select(leases.c.holder).where(leases.c.node == node,
                                                    leases.c.expires_at >= now)
            if conn.dialect.name == "postgresql":
                # One statement: the upsert and the read of the row as it was before it (a
                # data-modifying WITH and its main query share one snapshot).
                taken = stmt.cte("taken")
                both = sa.select(sa.select(taken.c.term).scalar_subquery(),
                                 live.scalar_subquery())
                term, holder = (await conn.execute(both)).one()
            else:  # SQLite has no INSERT in WITH; in-process, so no round trip is saved
                term = (await conn.execute(stmt)).scalar_one_or_none()
                holder = None if term is not None else (await conn.execute(live)).scalar()
        if term is not None:
            return int(term), None
        return None, holder

    async def renew(self, node: str, term: int) -> bool:
        """Extend the lease this holder took with `term`; False when it is no longer ours."""
        async with self._engine.begin() as conn:
            stmt = (
                leases.update()
                .where(leases.c.node == node, leases.c.holder == self.holder,
                       leases.c.term == term)
                .values(expires_at=db_now(conn) + self._ttl)
            )
            return (await conn.execute(stmt)).rowcount == 1

    async def release(self, node: str, term: int) -> None:
        """Give the lease up now (a clean stop): the next instance need not wait for expiry."""
        async with self._engine.begin() as conn:
            await conn.execute(
                leases.update()
                .where(leases.c.node == node, leases.c.holder == self.holder,
                       leases.c.term == term)
                .values(expires_at=0.0)
            )


async def lease_table(engine: AsyncEngine) -> list[Lease]:
    """Every node's lease, by node."""
    async with engine.connect() as conn:
        now = db_now(conn)
        rows = (await conn.execute(
            sa.select(leases.c.node, leases.c.holder, leases.c.term,
                      (leases.c.expires_at - now).label("left"),
                      (now - leases.c.acquired_at).label("held"))
            .order_by(leases.c.node)
        )).all()
    return [Lease(r.node, r.holder, r.term, float(r.left), float(r.held)) for r in rows]

"""Live views across a cluster: every node's lease holder publishes what its node shows live
(queues, operators, calls in progress) to `live_nodes` every `PUBLISH_S`, and reads the other
nodes' rows back; the live endpoints and the wallboard add those rows, each marked with its
node, to their own node's. A node whose row is older than `STALE_S` (no holder) is left out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.db.dialect import db_now, insert_for
from ccrouter.db.tables import live_nodes

log = structlog.get_logger(__name__)

PUBLISH_S: Final = 1.0
STALE_S: Final = 5.0
KINDS: Final = ("queues", "operators", "calls")

Snapshot = Callable[[], dict[str, list[dict[str, Any]]]]


class ClusterLive:
    def __init__(self, engine: AsyncEngine, node: str, holder: str) -> None:
        self._engine = engine
        self.node = node
        self._holder = holder
        self.others: dict[str, dict[str, list[dict[str, Any]]]] = {}
        """The other nodes' last published rows, by node (the fresh ones)."""

    def rows(self, kind: str) -> list[dict[str, Any]]:
        """The other nodes' rows of `kind`, each with its `node`."""
        return [{**row, "node": node} for node, payload in sorted(self.others.items())
                for row in payload.get(kind, ())]  # fmt: skip

    async def run(self, snapshot: Snapshot) -> None:
        while True:
            try:
                await self.exchange(snapshot())
            except Exception as exc:  # the database is away: the other nodes' rows go stale
                log.warning("cluster_live_failed", error=str(exc) or type(exc).__name__)
            await asyncio.sleep(PUBLISH_S)

    async def exchange(self, payload: dict[str, list[dict[str, Any]]]) -> None:
        """Publish this node's rows, read the other nodes' fresh ones."""
        async with self._engine.begin() as conn:
            now = db_now(conn)
            stmt = insert_for(conn, live_nodes).values(
                node=self.node, holder=self._holder, payload=payload, updated_at=now)
            await conn.execute(stmt.on_conflict_do_update(
                index_elements=[live_nodes.c.node],
                set_={"holder": stmt.excluded.holder, "payload": stmt.excluded.payload,
                      "updated_at": stmt.excluded.updated_at}))  # fmt: skip
            rows = (await conn.execute(
                sa.select(live_nodes.c.node, live_nodes.c.payload)
                .where(live_nodes.c.node != self.node,
                       live_nodes.c.updated_at > now - STALE_S))).all()  # fmt: skip
        self.others = {r.node: r.payload for r in rows if isinstance(r.payload, dict)}

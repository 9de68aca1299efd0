"""Reads (and the reconciliation update) on call cards.

A card is returned as a plain `dict` keyed by column name (every `cards` column: `id`, the
`CARD_FIELDS`, `created_at`, `updated_at`); `ivr_path` is decoded from JSON, `last_agent_hit`
is a bool, times are float epoch seconds. Dicts keep the store open to columns added later
without a matching dataclass change.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.domain.cards import CARD_FIELDS, CardState
from ccrouter.store.tables import cards

Card = dict[str, Any]


def _check_fields(fields: Mapping[str, Any]) -> None:
    unknown = set(fields) - CARD_FIELDS
    if unknown:
        raise ValueError(f"unknown card fields: {sorted(unknown)}")
    if "number" in fields:
        raise ValueError("a card's number cannot be changed")


class CardStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, number: str) -> Card | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(cards).where(cards.c.number == number))).first()
        return None if row is None else dict(row._mapping)

    async def open_cards(self) -> list[Card]:
        """Cards still open (for start-up reconciliation), oldest first."""
        query = (
            sa.select(cards)
            .where(cards.c.state == CardState.OPEN.value)
            .order_by(cards.c.started_at, cards.c.id)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [dict(r._mapping) for r in rows]

    async def close_card(self, number: str, fields: Mapping[str, Any]) -> bool:
        """Update one card directly (reconciliation, before the tracker submits writes), setting
        `state` to closed unless `fields` says otherwise. False when there is no such card."""
        _check_fields(fields)
        values = {"state": CardState.CLOSED.value, **fields, "updated_at": time.time()}
        async with self._engine.begin() as conn:
            result = await conn.execute(
                cards.update().where(cards.c.number == number).values(values)
            )
        return result.rowcount == 1

    async def recent_by_caller(self, caller_num: str, since: float, limit: int = 10) -> list[Card]:
        """The caller's cards started at or after `since` (epoch s), newest first."""
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        query = (
            sa.select(cards)
            .where(cards.c.caller_num == caller_num, cards.c.started_at >= since)
            .order_by(cards.c.started_at.desc(), cards.c.id.desc())
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [dict(r._mapping) for r in rows]

    async def count(self) -> int:
        async with self._engine.connect() as conn:
            return int(
                (await conn.execute(sa.select(sa.func.count()).select_from(cards))).scalar_one()
            )

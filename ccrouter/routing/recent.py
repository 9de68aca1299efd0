"""Who handled a caller's last call: the last-agent look-ups, kept off the database on the
hot `route` path.

The cache is warmed at start-up with the answered cards of the last `window_h` hours and fed
live from the tracker (every AgentConnect). A caller number is looked up in memory only; a
quoted card number missing from the cache is read from the database with a time limit
(`lookup_timeout_ms`), after which the call is routed without a last agent.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.db.tables import cards

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class PreviousCall:
    card: str
    interface: str
    caller_num: str
    answered_at: float


class RecentCalls:
    def __init__(
        self,
        window_s: float,
        lookup_timeout_s: float,
        get_card: Callable[[str], Awaitable[Mapping[str, Any] | None]],
        *,
        max_entries: int = 200_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._window_s = window_s
        self._timeout_s = lookup_timeout_s
        self._get_card = get_card
        self._max = max_entries
        self._clock = clock
        self._by_caller: OrderedDict[str, PreviousCall] = OrderedDict()
        self._by_card: OrderedDict[str, PreviousCall] = OrderedDict()
        self.lookups_timed_out = 0

    def remember(self, prev: PreviousCall) -> None:
        for index, key in ((self._by_card, prev.card), (self._by_caller, prev.caller_num)):
            if not key:
                continue
            index[key] = prev
            index.move_to_end(key)
            while len(index) > self._max:
                index.popitem(last=False)

    async def warm(self, engine: AsyncEngine) -> int:
        since = self._clock() - self._window_s
        query = (
            sa.select(cards.c.number, cards.c.interface, cards.c.caller_num, cards.c.answered_at)
            .where(cards.c.answered_at >= since, cards.c.interface.is_not(None))
            .order_by(cards.c.answered_at)
        )
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        for r in rows:
            self.remember(PreviousCall(r.number, r.interface, r.caller_num or "", r.answered_at))
        return len(rows)

    def by_caller(self, caller_num: str) -> PreviousCall | None:
        prev = self._by_caller.get(caller_num)
        if prev is None or prev.answered_at < self._clock() - self._window_s:
            return None
        return prev

    async def by_card(self, card: str) -> PreviousCall | None:
        prev = self._by_card.get(card)
        if prev is not None:
            return prev
        try:
            async with asyncio.timeout(self._timeout_s):
                row = await self._get_card(card)
        except TimeoutError:
            self.lookups_timed_out += 1
            log.warning("last_agent_lookup_timeout", card=card, timeout_s=self._timeout_s)
            return None
        if row is None or not row.get("interface"):
            return None
        prev = PreviousCall(card, str(row["interface"]), str(row.get("caller_num") or ""),
                            float(row.get("answered_at") or 0.0))  # fmt: skip
        self.remember(prev)
        return prev

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
    """The cache keeps only strings, floats and ints in plain dicts, no object per call: such
    dicts are left out of the cyclic GC altogether, so its full collections do not grow with
    the cache. With a PreviousCall per call in two OrderedDicts, a full collection took 45-60 ms
    at the 200 000-entry cap and 2 ms at the 17 000 of a bench run (2026-12-03), the event loop
    stopped meanwhile; now ~0."""

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
        # card -> its fields; caller number -> their last card
        self._interface: dict[str, str] = {}
        self._caller_of: dict[str, str] = {}
        self._answered_at: dict[str, float] = {}
        self._card_of_caller: dict[str, str] = {}
        # eviction order: card -> its place, place -> card (places only grow)
        self._place: dict[str, int] = {}
        self._by_place: dict[int, str] = {}
        self._next_place = 0
        self._oldest_place = 0
        self.lookups_timed_out = 0

    def __len__(self) -> int:
        return len(self._interface)

    def remember(self, prev: PreviousCall) -> None:
        """Keep `prev` as its card's and (when given) its caller's last call; past
        `max_entries` cards the least recently remembered goes."""
        card = prev.card
        if not card:
            return
        old = self._place.pop(card, None)
        if old is not None:
            del self._by_place[old]
        self._place[card] = self._next_place
        self._by_place[self._next_place] = card
        self._next_place += 1
        self._interface[card] = prev.interface
        self._caller_of[card] = prev.caller_num
        self._answered_at[card] = prev.answered_at
        if prev.caller_num:
            self._card_of_caller[prev.caller_num] = card
        while len(self._place) > self._max:
            self._forget_oldest()

    def _forget_oldest(self) -> None:
        while self._oldest_place not in self._by_place:  # places of cards remembered again
            self._oldest_place += 1
        card = self._by_place.pop(self._oldest_place)
        del self._place[card], self._interface[card], self._answered_at[card]
        caller = self._caller_of.pop(card)
        if caller and self._card_of_caller.get(caller) == card:
            del self._card_of_caller[caller]

    def _get(self, card: str) -> PreviousCall | None:
        interface = self._interface.get(card)
        if interface is None:
            return None
        return PreviousCall(card, interface, self._caller_of[card], self._answered_at[card])

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
        card = self._card_of_caller.get(caller_num)
        prev = self._get(card) if card is not None else None
        if prev is None or prev.answered_at < self._clock() - self._window_s:
            return None
        return prev

    async def by_card(self, card: str) -> PreviousCall | None:
        prev = self._get(card)
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

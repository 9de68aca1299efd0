"""The last-agent cache (`routing.recent.RecentCalls`): what it answers, what it forgets, and
that the cyclic GC never walks it (its full collections stopped the event loop ~50 ms at the
200 000-entry cap when every call was an object in two OrderedDicts)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Mapping
from typing import Any

from ccrouter.routing.recent import PreviousCall, RecentCalls

NOW = 1_800_000_000.0


def cache(rows: Mapping[str, Mapping[str, Any]] | None = None, *, max_entries: int = 1000,
          window_s: float = 3600.0, delay_s: float = 0.0) -> RecentCalls:  # fmt: skip
    async def get_card(card: str) -> Mapping[str, Any] | None:
        await asyncio.sleep(delay_s)
        return (rows or {}).get(card)

    return RecentCalls(window_s, 0.05, get_card, max_entries=max_entries, clock=lambda: NOW)


def call(i: int, caller: str = "", at: float = NOW - 10) -> PreviousCall:
    return PreviousCall(f"C{i:05d}", f"PJSIP/{1000 + i}", caller or f"+7900{i:07d}", at)


async def test_a_caller_and_a_quoted_card_find_their_last_call() -> None:
    recent = cache()
    recent.remember(call(1, caller="+79001"))
    recent.remember(call(2, caller="+79001"))  # the same caller again: the newer call wins
    assert recent.by_caller("+79001") == call(2, caller="+79001")
    assert await recent.by_card("C00001") == call(1, caller="+79001")
    assert recent.by_caller("+79999") is None


async def test_a_call_older_than_the_window_is_no_last_call() -> None:
    recent = cache(window_s=60.0)
    recent.remember(call(1, at=NOW - 61))
    assert recent.by_caller(call(1).caller_num) is None
    assert await recent.by_card("C00001") == call(1, at=NOW - 61)  # a quoted card still is


async def test_past_the_cap_the_least_recently_remembered_go_with_their_callers() -> None:
    recent = cache(max_entries=3)
    for i in range(3):
        recent.remember(call(i))
    recent.remember(call(0))  # remembered again: now the newest
    recent.remember(call(3))  # over the cap: card 1 goes, the oldest
    assert len(recent) == 3
    assert recent.by_caller(call(1).caller_num) is None
    assert [recent.by_caller(call(i).caller_num) for i in (0, 2, 3)] == [call(0), call(2), call(3)]
    for i in range(4, 10):
        recent.remember(call(i))
    assert len(recent) == 3
    assert [recent.by_caller(call(i).caller_num) for i in (7, 8, 9)] == [call(7), call(8), call(9)]
    assert recent.by_caller(call(0).caller_num) is None


async def test_a_callers_newer_card_survives_their_older_cards_eviction() -> None:
    recent = cache(max_entries=2)
    recent.remember(call(1, caller="+79001"))
    recent.remember(call(2, caller="+79001"))
    recent.remember(call(3))  # card 1 goes; the caller's last call is card 2
    assert recent.by_caller("+79001") == call(2, caller="+79001")


async def test_a_card_missing_from_the_cache_is_read_once_then_kept() -> None:
    row = {"interface": "PJSIP/1050", "caller_num": "+79050", "answered_at": NOW - 5}
    recent = cache({"C00050": row})
    got = await recent.by_card("C00050")
    assert got == PreviousCall("C00050", "PJSIP/1050", "+79050", NOW - 5)
    assert recent.by_caller("+79050") == got
    assert await recent.by_card("C00051") is None


async def test_a_slow_database_gives_no_last_agent_in_time() -> None:
    recent = cache({"C00050": {"interface": "PJSIP/1050"}}, delay_s=1.0)
    assert await recent.by_card("C00050") is None
    assert recent.lookups_timed_out == 1


def test_the_cyclic_gc_never_walks_the_cache() -> None:
    recent = cache(max_entries=5000)
    for i in range(10_000):
        recent.remember(call(i))
    gc.collect()
    walked = [name for name, value in vars(recent).items()
              if isinstance(value, dict) and gc.is_tracked(value)]  # fmt: skip
    assert walked == []
    assert len(recent) == 5000

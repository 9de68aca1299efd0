"""Card reads and the reconciliation update."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.calls.model.cards import CARD_FIELDS, CardWrite
from ccrouter.calls.store import CardStore
from ccrouter.calls.writer import CardWriter
from ccrouter.config import DatabaseSettings
from ccrouter.db.engine import make_engine

T0 = 1_700_000_000.0


async def write(engine: AsyncEngine, *writes: CardWrite) -> None:
    writer = CardWriter(engine, DatabaseSettings())
    for w in writes:
        writer.submit(w)
    await writer.close()


def card(number: str, **fields: Any) -> CardWrite:
    return CardWrite(number, {"state": "open", **fields}, insert=True)


async def test_get_returns_every_column_decoded(engine: AsyncEngine) -> None:
    await write(
        engine,
        card(
            "0000013",
            caller_num="+77001234567",
            started_at=T0,
            ivr_path=[{"menu": "main", "digit": "2"}, "queue"],
            last_agent_hit=True,
            wait_s=12,
        ),
    )
    store = CardStore(engine)
    got = await store.get("0000013")
    assert got is not None
    assert set(got) == CARD_FIELDS | {"id", "created_at", "updated_at"}
    assert got["ivr_path"] == [{"menu": "main", "digit": "2"}, "queue"]
    assert got["last_agent_hit"] is True
    assert (got["started_at"], got["wait_s"], got["caller_num"]) == (T0, 12, "+77001234567")
    assert got["created_at"] == got["updated_at"] > 0
    assert got["outcome"] is None
    assert await store.get("0000020") is None
    await store.close()


async def test_open_cards_and_close_card(engine: AsyncEngine) -> None:
    await write(
        engine,
        card("c2", started_at=T0 + 2),
        card("c1", started_at=T0 + 1),
        CardWrite("c3", {"state": "closed", "started_at": T0}, insert=True),
    )
    store = CardStore(engine)
    assert [c["number"] for c in await store.open_cards()] == ["c1", "c2"]

    before = await store.get("c1")
    assert await store.close_card("c1", {"outcome": "lost", "close_reason": "reconciled"})
    after = await store.get("c1")
    assert before is not None and after is not None
    assert (after["state"], after["outcome"], after["close_reason"]) == (
        "closed",
        "lost",
        "reconciled",
    )
    assert after["updated_at"] >= before["updated_at"]
    assert [c["number"] for c in await store.open_cards()] == ["c2"]
    assert not await store.close_card("nope", {"outcome": "lost"})
    await store.close()


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"colour": "red"}, r"unknown card fields: \['colour'\]"), ({"number": "1"}, "number")],
)
async def test_close_card_rejects_bad_fields(
    engine: AsyncEngine, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await CardStore(engine).close_card("c1", fields)


async def test_recent_by_caller(engine: AsyncEngine) -> None:
    await write(
        engine,
        *(card(f"a{i}", caller_num="+7700", started_at=T0 + i) for i in range(5)),
        card("b0", caller_num="+7711", started_at=T0 + 3),
    )
    store = CardStore(engine)
    recent = await store.recent_by_caller("+7700", since=T0 + 1, limit=3)
    assert [c["number"] for c in recent] == ["a4", "a3", "a2"]
    assert [c["number"] for c in await store.recent_by_caller("+7700", T0 + 4, 10)] == ["a4"]
    assert await store.recent_by_caller("+7799", T0, 10) == []
    with pytest.raises(ValueError, match="limit"):
        await store.recent_by_caller("+7700", T0, 0)


async def test_count(engine: AsyncEngine) -> None:
    store = CardStore(engine)
    assert await store.count() == 0
    await write(engine, *(card(f"n{i}") for i in range(7)))
    assert await store.count() == 7


async def test_point_lookup_matches_the_sqlalchemy_path(engine: AsyncEngine) -> None:
    """`get` on a file database reads through its own connection; the dicts must equal the
    SQLAlchemy ones (every column, decoded), see later writes, and survive close()."""
    await write(
        engine,
        card(
            "p1",
            caller_num="+77001234567",
            started_at=T0,
            ivr_path=["main", {"d": "1"}],
            last_agent_hit=False,
            wait_s=3,
            notes="vip",
        ),
        card("p2"),
    )
    store = CardStore(engine)
    assert store._reader is not None  # the fast path is the one under test
    slow = CardStore(engine)
    await slow.close()  # no reader: the SQLAlchemy query
    for number in ("p1", "p2", "missing"):
        fast_card, slow_card = await store.get(number), await slow.get(number)
        assert fast_card == slow_card
        if fast_card is not None:
            types = {k: type(v) for k, v in fast_card.items()}
            assert types == {k: type(v) for k, v in (slow_card or {}).items()}
    got = await store.get("p1")
    assert got is not None and got["last_agent_hit"] is False
    assert got["ivr_path"] == ["main", {"d": "1"}]
    await write(engine, CardWrite("p2", {"outcome": "answered"}))
    assert (await store.get("p2") or {})["outcome"] == "answered"  # a fresh read, no stale cache
    results = await asyncio.gather(*(store.get(n) for n in ["p1", "p2", "nope"] * 20))
    assert [r["number"] if r else None for r in results[:3]] == ["p1", "p2", None]
    await store.close()
    assert (await store.get("p1")) == got  # after close(): the SQLAlchemy path


async def test_in_memory_database_uses_the_engine(tmp_path: Path) -> None:
    eng = make_engine("sqlite+aiosqlite:///:memory:")
    try:
        store = CardStore(eng)
        assert store._reader is None  # a second connection would see another database
    finally:
        await eng.dispose()

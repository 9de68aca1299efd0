"""End to end on PostgreSQL: the simulator's calls through ccrouter (AMI + FastAGI over real
TCP) with `database.url` on a real PostgreSQL server — calls routed, answered and abandoned,
every card written once and closed, card numbers unique, the caller's repeat card found, and
`/healthz`'s write probe on PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa

from ccrouter.calls.model.cards import is_valid_card_number
from ccrouter.dialplan import STATUS_OK, VAR_CARD, VAR_STATUS
from ccrouter.sim import SimCaller
from tests.pg import PgServer
from tests.stack import add_operator, stack, wait_until
from tests.web_stack import web_stack

WALLET_DID = "712000100"
TERMINAL_DID = "712000200"


async def test_calls_on_postgresql_leave_one_closed_card_each(
    tmp_path: Path, pg_server: PgServer
) -> None:
    url = await pg_server.database()  # empty: ccrouter migrates it at start-up
    async with stack(tmp_path, database_url=url) as st:
        assert st.app.engine.dialect.name == "postgresql"
        add_operator(st.sim, "wallet-ru", "PJSIP/1001", "Dilnoza", answer_after_s=1, talk_time_s=2)
        answered = [
            st.sim.place_call(SimCaller(f"7900100000{i}", "Ivan", dialled=WALLET_DID))
            for i in range(3)
        ]
        abandoned = st.sim.place_call(SimCaller("79002220000", dialled=TERMINAL_DID,
                                                patience_s=6))  # fmt: skip
        short = st.sim.place_call(SimCaller("79003330000", dialled=TERMINAL_DID, patience_s=1))
        outcomes = await asyncio.wait_for(
            asyncio.gather(*(c.finished for c in [*answered, abandoned, short])), 30
        )
        assert outcomes == ["answered"] * 3 + ["abandoned", "abandoned"]
        await wait_until(lambda: len(st.app.tracker.book) == 0, timeout=10, what="cards closed")
        cards = await st.cards()
        told = [c.variables[VAR_CARD] for c in answered]
        assert all(c.variables[VAR_STATUS] == STATUS_OK for c in answered)
        # the route script's lookup of a quoted card, on the asyncpg point reader
        quoted = await st.app.store.get(told[0])
    assert len(cards) == 5 and len({c["number"] for c in cards}) == 5
    assert all(is_valid_card_number(c["number"]) and c["state"] == "closed" for c in cards)
    by_caller = {c["caller_num"]: c for c in cards}
    for i, number in enumerate(told):
        card = by_caller[f"7900100000{i}"]
        assert card["number"] == number
        assert (card["outcome"], card["operator"], card["talk_s"]) == ("answered", "Dilnoza", 2)
        assert card["started_at"] <= card["answered_at"] <= card["ended_at"]
    assert by_caller["79002220000"]["outcome"] == "abandoned"
    assert by_caller["79002220000"]["wait_s"] == 6
    assert by_caller["79003330000"]["outcome"] == "short_abandon"
    assert quoted is not None and quoted["number"] == told[0] and quoted["outcome"] == "answered"
    assert isinstance(quoted["started_at"], float) and quoted["started_at"] > 1.6e9


async def test_healthz_and_tokens_on_postgresql(tmp_path: Path, pg_server: PgServer) -> None:
    """/healthz's write probe (an upsert of meta's `web_health` row) and bearer tokens, on
    PostgreSQL: twice (insert, then update); a supervisor token is accepted, none refused."""
    url = await pg_server.database()
    async with web_stack(tmp_path, database_url=url) as ws:
        for _ in range(2):
            status, body = await ws.call("GET", "/healthz")
            assert status == 200 and body["db_writable"] and body["status"] == "ok", body
        async with ws.st.app.engine.connect() as conn:
            value = (await conn.execute(
                sa.text("SELECT value FROM meta WHERE key = 'web_health'"))).scalar_one()
        assert float(value) > 1.6e9
        status, _ = await ws.call("GET", "/api/v1/cards", "sup")  # a token looked up on PG
        assert status == 200
        status, _ = await ws.call("GET", "/api/v1/cards", None)
        assert status == 401

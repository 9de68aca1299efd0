"""Alerts: pure rule evaluation and de-duplication; persisted state across a restart; a
simulator scenario where alerts fire and resolve to a webhook that fails once (retried)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ccrouter.alerts.model import AlertBook, Observation, Reading, evaluate, in_hours
from ccrouter.alerts.service import AlertService, LiveSource
from ccrouter.config import AlertRule, AlertSettings, WebhookSettings
from ccrouter.db.engine import make_engine
from ccrouter.db.migrate import migrate
from ccrouter.reports.model import CallFacts, Counts, count
from ccrouter.sim import SimCaller, SimOperator
from tests.stack import wait_until
from tests.web_stack import web_settings, web_stack

QUEUES = ("wallet-ru", "terminal-ru")


def obs(**kw: Any) -> Observation:
    base: dict[str, Any] = {
        "at": 1000.0, "local_minute": 600, "queues": QUEUES, "sl_counts": {},
        "longest_wait": {}, "logged_in": dict.fromkeys(QUEUES, 1), "ami_down_s": None,
        "readings": {},
    }
    return Observation(**{**base, **kw})


def rule(**kw: Any) -> AlertRule:
    return AlertRule.model_validate(kw)


def counts(answered_in_sl: int, late: int, short: int = 0) -> Counts:
    facts = [CallFacts("answered", wait_s=5)] * answered_in_sl
    facts += [CallFacts("answered", wait_s=60)] * late + [CallFacts("short_abandon", 1)] * short
    return count(facts, 20)


def test_each_rule_kind() -> None:
    sl = rule(name="sl", kind="sl_below", threshold=0.8, min_offered=5)
    assert evaluate([sl], obs(sl_counts={"sl": {"wallet-ru": counts(7, 3)}})).keys() == {
        "sl:wallet-ru"}
    assert not evaluate([sl], obs(sl_counts={"sl": {"wallet-ru": counts(8, 2)}}))  # 80%: ok
    # too few calls (short abandons do not count) -> quiet
    assert not evaluate([sl], obs(sl_counts={"sl": {"wallet-ru": counts(0, 4, short=9)}}))
    wait = rule(name="wait", kind="longest_wait_above", threshold=60, queue="terminal-ru")
    assert evaluate([wait], obs(longest_wait={"terminal-ru": 61, "wallet-ru": 500})).keys() == {
        "wait:terminal-ru"}
    assert not evaluate([wait], obs(longest_wait={"terminal-ru": 60}))
    nobody = rule(name="nobody", kind="no_operator", hours="08:00-20:00")
    empty = {"wallet-ru": 0, "terminal-ru": 2}
    assert evaluate([nobody], obs(logged_in=empty)).keys() == {"nobody:wallet-ru"}
    assert not evaluate([nobody], obs(logged_in=empty, local_minute=20 * 60))  # after hours
    down = rule(name="down", kind="ami_down", threshold=30)
    assert not evaluate([down], obs(ami_down_s=30)) and evaluate([down], obs(ami_down_s=31))
    backlog = rule(name="cb", kind="callback_backlog_above", threshold=20)
    assert not evaluate([backlog], obs(readings={}))  # no callback feature
    waiting = Reading(21, "callback requests waiting")  # the callbacks feature's gauge
    assert evaluate([backlog], obs(readings={"callback_backlog_above": waiting}))["cb"].value == 21


@pytest.mark.parametrize(("hours", "minute", "inside"), [
    ("08:00-20:00", 8 * 60, True), ("08:00-20:00", 20 * 60, False),
    ("22:00-06:00", 23 * 60, True), ("22:00-06:00", 5 * 60 + 59, True),
    ("22:00-06:00", 12 * 60, False), ("00:00-00:00", 0, True), ("00:00-24:00", 1439, True),
])
def test_in_hours(hours: str, minute: int, inside: bool) -> None:
    assert in_hours(hours, minute) is inside


def test_book_fires_once_and_resolves_once() -> None:
    down = rule(name="down", kind="ami_down", threshold=1)
    book = AlertBook()
    states = []
    for t, down_s in enumerate([None, 5, 6, 7, None, None, 9]):
        notices = book.update(evaluate([down], obs(at=float(t), ami_down_s=down_s)), float(t))
        states += [(t, n.state) for n in notices]
    assert states == [(1, "fired"), (4, "resolved"), (6, "fired")]


class FakeSource(LiveSource):
    def __init__(self) -> None:
        self.down_since: float | None = None
        super().__init__(lambda: QUEUES, dict, lambda: dict.fromkeys(QUEUES, 1),
                         lambda: self.down_since, dict)


async def no_sl(start: float, end: float, queues: Sequence[str]) -> dict[str, Counts]:
    return {}


async def test_active_alerts_survive_a_restart_without_a_second_notice(db_url: str) -> None:
    engine = make_engine(db_url)  # a SQLite file, then a PostgreSQL database
    await migrate(engine)

    settings = AlertSettings(rules=[rule(name="down", kind="ami_down", threshold=1)])
    source = FakeSource()
    source.down_since = 0.0
    try:
        first = AlertService(settings, engine, source, no_sl, clock=lambda: 100.0)
        await first.load()
        assert [n.state for n in await first.evaluate_once()] == ["fired"]
        second = AlertService(settings, engine, source, no_sl, clock=lambda: 200.0)
        await second.load()
        assert [a.key for a in second.active()] == ["down"]
        assert await second.evaluate_once() == []  # still down: no duplicate
        source.down_since = None
        assert [n.state for n in await second.evaluate_once()] == ["resolved"]
        third = AlertService(settings, engine, source, no_sl)
        await third.load()
        assert third.active() == []
    finally:
        await engine.dispose()


async def test_each_nodes_holder_keeps_its_own_alerts(db_url: str) -> None:
    """Two nodes' holders on one database: each fires its node's alert once, under its own key
    (`n1/down`), and a restart of one restores only its own, never the other node's."""
    engine = make_engine(db_url)
    await migrate(engine)

    settings = AlertSettings(rules=[rule(name="down", kind="ami_down", threshold=1)])
    source = FakeSource()
    source.down_since = 0.0
    try:
        n1 = AlertService(settings, engine, source, no_sl, clock=lambda: 100.0, node="n1")
        n2 = AlertService(settings, engine, source, no_sl, clock=lambda: 100.0, node="n2")
        for svc in (n1, n2):
            await svc.load()
            (notice,) = await svc.evaluate_once()
            assert notice.state == "fired"
        assert [a.key for a in n1.active()] == ["n1/down"]
        assert n2.active()[0].message.endswith("(node n2)")
        again = AlertService(settings, engine, source, no_sl, clock=lambda: 200.0, node="n2")
        await again.load()
        assert [a.key for a in again.active()] == ["n2/down"]
        assert await again.evaluate_once() == []  # still down: no second notice
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def webhook(fail_first: int) -> AsyncIterator[tuple[str, list[dict[str, Any]], list[int]]]:
    received: list[dict[str, Any]] = []
    attempts = [0]

    async def hook(request: web.Request) -> web.Response:
        attempts[0] += 1
        if attempts[0] <= fail_first:
            return web.Response(status=500)
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/hook", received, attempts
    finally:
        await runner.cleanup()


async def test_alerts_fire_and_resolve_in_a_simulator_scenario(tmp_path: Path) -> None:
    async with webhook(fail_first=1) as (url, received, attempts):
        rules = [
            {"name": "down", "kind": "ami_down", "threshold": 0.3},
            {"name": "wait", "kind": "longest_wait_above", "queue": "terminal-ru",
             "threshold": 0.3},
            {"name": "nobody", "kind": "no_operator", "queue": "wallet-ru",
             "hours": "00:00-00:00"},
        ]
        alerts = {"evaluate_every_s": 0.05, "rules": [AlertRule.model_validate(r) for r in rules],
                  "webhook": WebhookSettings(url=url, backoff_s=0.05, attempts=3)}
        async with web_stack(tmp_path, web_settings(alerts=alerts)) as ws:
            def keys(state: str) -> list[str]:
                return [r["key"] for r in received if r["state"] == state]

            await wait_until(lambda: "nobody:wallet-ru" in keys("fired"), what="nobody fired")
            ws.st.sim.add_operator(idle_operator())
            ws.st.sim.add_member("wallet-ru", "PJSIP/1001", name="Dilnoza")
            await ws.st.app.ami.send({"Action": "QueuePause", "Queue": "wallet-ru",
                                      "Interface": "PJSIP/1001", "Paused": "false"})
            await wait_until(lambda: "nobody:wallet-ru" in keys("resolved"), what="resolved")

            call = ws.st.sim.place_call(SimCaller("79001234567", dialled="712000200",
                                                  patience_s=16))  # 0.8 s real: then abandons
            await wait_until(lambda: "wait:terminal-ru" in keys("fired"), what="wait fired")
            _, active = await ws.call("GET", "/api/v1/alerts", "sup")
            assert [a["key"] for a in active] == ["wait:terminal-ru"]
            await asyncio.wait_for(call.finished, 10)
            await wait_until(lambda: "wait:terminal-ru" in keys("resolved"), what="resolved")

            ws.st.sim.set_half_open(True)
            await wait_until(lambda: "down" in keys("fired"), what="AMI down fired")
            ws.st.sim.set_half_open(False)
            await wait_until(lambda: "down" in keys("resolved"), timeout=8, what="AMI back")
        assert sorted(r["key"] for r in received) == sorted(
            ["nobody:wallet-ru"] * 2 + ["wait:terminal-ru"] * 2 + ["down"] * 2)  # no repeats
        assert attempts[0] == len(received) + 1  # the first POST failed and was retried
        fired = next(r for r in received if r["key"] == "down")
        assert fired["kind"] == "ami_down" and "unreachable" in fired["message"]


def idle_operator() -> SimOperator:
    """Logged in, never answers (the scenario only needs someone logged in)."""
    return SimOperator(interface="PJSIP/1001", answer_after_s=1000)

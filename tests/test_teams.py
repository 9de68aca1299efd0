"""Teams and after-call work end to end on the simulator: a team supervisor's live calls,
operators and wallboard hold only the team; the operator page's pop says when the call ended
and the deadline; saving topic and resolution completes the card; the KPIs (API and CSV) give
card completion and after-call time per operator and team; config, token CLI and wrapuptime."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from pathlib import Path
from typing import Any

import pytest

from ccrouter.asterisk_conf.queues import queues_conf
from ccrouter.cli import main
from ccrouter.config import check_settings
from ccrouter.reports.model import CallFacts, count, kpi
from ccrouter.sim import SimCaller
from ccrouter.web.auth import Role, TokenScope, TokenStore
from tests.stack import add_operator, example_settings, wait_until
from tests.test_config import BASE, write
from tests.test_operator_cli import config_for
from tests.test_web_api import WALLET_DID
from tests.test_web_live import events, next_event, open_stream
from tests.web_stack import web_stack

FLOOR_1 = {"op1001", "op1002", "op1003"}  # config/ccrouter.yaml teams
FLOOR_2 = {"op1004", "op1005", "op1006"}


async def test_team_supervisor_sees_and_manages_only_the_team(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as ws:
        store = TokenStore(ws.st.app.engine)
        ws.tokens["sup-1"], _ = await store.create("sup-1", Role.SUPERVISOR,
                                                   scope=TokenScope(teams=("floor-1",)))
        ws.tokens["lead-floor-1"], _ = await store.create("lead-floor-1", Role.SUPERVISOR)
        ws.tokens["sup-2"], _ = await store.create("sup-2", Role.SUPERVISOR,
                                                   scope=TokenScope(teams=("floor-2",)))
        _, me = await ws.call("GET", "/api/v1/me", "lead-floor-1")  # named in teams[].supervisors
        assert me["scope"]["teams"] == ["floor-1"] and set(me["scope"]["operators"]) == FLOOR_1
        add_operator(ws.st.sim, "wallet-ru", "PJSIP/1001", "Dilnoza Karimova",
                     answer_after_s=0.5, talk_time_s=3000)
        board1 = events(await open_stream(ws, "/api/v1/live/stream", "sup-1"))
        board2 = events(await open_stream(ws, "/api/v1/live/stream", "sup-2"))
        pops = events(await open_stream(ws, "/api/v1/operators/op1001/stream", "op1"))
        call = ws.st.sim.place_call(SimCaller("79001234567", "Ivan", dialled=WALLET_DID))

        def talking(name: str, snap: Any) -> bool:
            return bool(name == "snapshot" and snap["calls"] and snap["calls"][0]["answered"])

        snap1 = await next_event(board1, talking)
        assert {o["id"] for o in snap1["operators"]} == FLOOR_1
        assert snap1["team_view"] == ["floor-1"] and [t["team"] for t in snap1["teams"]] in (
            [], ["floor-1"])  # the teams' KPIs come at the wallboard's next KPI refresh
        since = time.time()
        snap2 = await next_event(board2, lambda n, s: n == "snapshot" and s["at"] > since)
        assert {o["id"] for o in snap2["operators"]} == FLOOR_2 and snap2["calls"] == []
        for who, n in (("sup-1", 1), ("lead-floor-1", 1), ("sup-2", 0), ("sup", 1)):
            _, live = await ws.call("GET", "/api/v1/live/calls", who)
            assert len(live) == n, (who, live)
        _, ops = await ws.call("GET", "/api/v1/operators", "sup-2")
        assert {o["id"] for o in ops} == FLOOR_2
        status, body = await ws.call("POST", "/api/v1/operators/op1001/state", "sup-2",
                                     json={"action": "pause", "reason": "x"})
        assert status == 403 and set(body) == {"error", "message"}
        status, body = await ws.call("POST", "/api/v1/operators/op1002/state", "sup-1",
                                     json={"action": "pause", "reason": "coaching"})
        assert status == 200 and body["paused"] is True
        # the call ends: the operator page gets the end and the deadline
        live_call = ws.st.app.tracker.book.find(uniqueid=call.uniqueid, linkedid=call.linkedid)
        assert live_call is not None
        await ws.st.app.ami.send({"Action": "Hangup", "Channel": live_call.channel})
        ended = await next_event(pops, lambda n, d: n == "pop" and d["phase"] == "ended")
        number = ended["card"]["number"]
        assert ended["card_deadline_s"] == 120 and ended["card"]["ended_at"] > 0
        await asyncio.wait_for(call.finished, 10)
        await wait_until(lambda: len(ws.st.app.tracker.book) == 0, what="card closed")
        # sup-2 cannot see or fill the card of floor-1's call; sup-1 can't see it as sup-2's
        assert (await ws.call("GET", f"/api/v1/cards/{number}", "sup-2"))[0] == 404
        status, _ = await ws.call("PATCH", f"/api/v1/cards/{number}", "sup-2",
                                  json={"topic": "x"})
        assert status == 404
        # the operator completes the card: topic first (not complete), then the resolution
        _, got = await ws.call("PATCH", f"/api/v1/cards/{number}", "op1", json={"topic": "pin"})
        assert got["card"]["completed_at"] is None
        _, got = await ws.call("PATCH", f"/api/v1/cards/{number}", "op1",
                               json={"resolution": "reset"})
        card = got["card"]
        assert card["completed_at"] >= card["ended_at"]
        _, again = await ws.call("PATCH", f"/api/v1/cards/{number}", "op1", json={"notes": "n"})
        assert again["card"]["completed_at"] == card["completed_at"]  # stamped once
        acw = card["completed_at"] - card["ended_at"]
        _, rep = await ws.call("GET", "/api/v1/reports/kpi", "sup-1")
        (op_row,) = rep["operators"]
        assert op_row["operator_id"] == "op1001" and op_row["card_completion"] == 1.0
        assert op_row["acw_s"] == pytest.approx(acw, abs=1e-3)
        assert [t["team"] for t in rep["teams"]] == ["floor-1"]
        assert rep["teams"][0]["cards_completed"] == 1 and rep["card_deadline_s"] == 120
        _, rep2 = await ws.call("GET", "/api/v1/reports/kpi", "sup-2")
        assert rep2["total"]["offered"] == 0 and rep2["operators"] == []
        assert rep2["teams"][0]["team"] == "floor-2" and rep2["teams"][0]["cards_completed"] == 0
        _, text = await ws.call("GET", "/api/v1/reports/kpi?format=csv", "sup")
        rows = list(csv.DictReader(io.StringIO(text)))
        team = {r["key"]: r for r in rows if r["section"] == "team"}
        assert set(team) == {"floor-1", "floor-2"}
        assert team["floor-1"]["card_completion"] == "1.0" and team["floor-2"]["acw_s"] == ""


def test_card_completion_reference() -> None:
    calls = [
        CallFacts("answered", 5, 60, ended_at=100.0, completed_at=150.0),   # 50 s: in time
        CallFacts("answered", 5, 60, ended_at=100.0, completed_at=400.0),   # 300 s: late
        CallFacts("answered", 5, 60, ended_at=100.0, completed_at=90.0),    # during the call
        CallFacts("answered", 5, 60, ended_at=100.0),                       # never completed
        CallFacts("answered", 5, 60),                                       # still talking
        CallFacts("abandoned", 30, ended_at=100.0, completed_at=110.0),     # no card work
    ]
    k = kpi(count(calls, 20, card_deadline_s=120))
    assert k.card_completion == pytest.approx(2 / 4)
    assert k.acw_s == pytest.approx((50 + 300 + 0) / 3) and k.cards_completed == 3


def test_target_wrapup_s_sets_the_queues_wrapuptime() -> None:
    s = example_settings()
    targets = [t.model_copy(update={"wrapup_s": 25}) if t.name == "terminal-ru" else t
               for t in s.targets]
    conf = queues_conf(s.model_copy(update={"targets": targets}))
    sections = {b.split("]")[0]: b for b in conf.split("\n[")[1:]}
    assert "wrapuptime = 25" in sections["terminal-ru"].splitlines()
    assert f"wrapuptime = {s.routing.queues.wrapup_s}" in sections["wallet-ru"].splitlines()


TEAMS_OK = "teams:\n  - {name: a, operators: [op1], supervisors: [lead]}\n"


@pytest.mark.parametrize(("text", "line", "key", "message"), [
    ("teams:\n  - {name: a, operators: [op9]}\n", 24, "teams[0].operators[0]",
     "unknown operator 'op9'; declared: op1"),
    (TEAMS_OK + "  - {name: a}\n", 25, "teams[1].name", "duplicate team 'a' (first: teams[0])"),
    ("teams:\n  - {name: 'a b'}\n", 24, "teams[0].name", "should match pattern"),
    ("teams:\n  - {name: a, leader: x}\n", 24, "teams[0].leader",
     "unknown key; known keys: name, operators, supervisors"),
])  # fmt: skip
def test_team_config_errors_name_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, message: str
) -> None:
    errors = check_settings(write(tmp_path, BASE + text), {})
    assert [(e.line, e.key) for e in errors] == [(line, key)], errors
    assert message in errors[0].message
    assert check_settings(write(tmp_path, BASE + TEAMS_OK), {}) == []


def test_token_cli_scopes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config_for(tmp_path, tmp_path / "cards.db")

    def token(*args: str) -> int:
        return main(["token", "--config", str(cfg), "create", *args])

    assert token("--role", "supervisor", "--team", "floor-1", "--name", "aziz") == 0
    assert "teams=floor-1" in capsys.readouterr().out
    assert token("--role", "viewer", "--product", "wallet", "--target", "terminal-ru",
                 "--personal-data", "--name", "bank") == 0
    capsys.readouterr()
    assert main(["token", "--config", str(cfg), "list"]) == 0
    lines = [ln.split("\t") for ln in capsys.readouterr().out.splitlines()]
    assert [(r[1], r[5]) for r in lines] == [
        ("supervisor", "teams=floor-1"),
        ("viewer", "products=wallet targets=terminal-ru personal_data")]
    for args, says in (
        (("--role", "supervisor", "--team", "floor-9"), "--team: unknown team 'floor-9'"),
        (("--role", "viewer"), "needs a scope: --product and/or --target"),
        (("--role", "viewer", "--product", "cards"), "--product: unknown product 'cards'"),
        (("--role", "admin", "--team", "floor-1"), "only supervisor tokens are scoped to teams"),
        (("--role", "supervisor", "--product", "wallet"), "only viewer tokens"),
    ):
        assert token(*args, "--name", "x") == 2, args
        assert says in capsys.readouterr().err, args


async def test_a_reload_moves_an_operator_between_teams(tmp_path: Path) -> None:
    from tests.test_web_reload import RELOAD, copy_config, rewrite

    path = copy_config(tmp_path)
    async with web_stack(tmp_path, config_path=path) as ws:
        ws.tokens["sup-1"], _ = await TokenStore(ws.st.app.engine).create(
            "sup-1", Role.SUPERVISOR, scope=TokenScope(teams=("floor-1",)))
        assert (await ws.call("GET", "/api/v1/operators/op1004", "sup-1"))[0] == 403
        rewrite(path, "operators: [op1001, op1002, op1003]",
                "operators: [op1001, op1002, op1003, op1004]")
        status, body = await ws.call("POST", RELOAD, "admin")
        assert status == 200 and "teams" in body["applied"], body
        assert (await ws.call("GET", "/api/v1/operators/op1004", "sup-1"))[0] == 200
        _, me = await ws.call("GET", "/api/v1/me", "sup-1")
        assert set(me["scope"]["operators"]) == FLOOR_1 | {"op1004"}

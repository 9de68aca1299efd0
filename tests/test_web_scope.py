"""Scopes on every endpoint, generated from the endpoint table: each role x scope x endpoint x
resource (a card or an operator inside / outside the scope) is either allowed (2xx, and a list
holds only what is in the scope) or refused (403/404 with an error body and nothing else).

The expectation is this test's own statement of the rules (README "Teams and outside
viewers"), not the implementation's `may_act_on`: a table row per principal, a card per team
and product line, an operator per team."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ccrouter.calls.model.cards import CardWrite
from ccrouter.config.helpdesk import HelpdeskSettings
from ccrouter.config.teams import Team
from ccrouter.helpdesk.feature import install as helpdesk
from ccrouter.qc.store import QcStore
from ccrouter.recordings.store import RecordingStore
from ccrouter.web.api import Endpoint, Scoping
from ccrouter.web.auth import Role, TokenScope, TokenStore
from tests.test_web_api import BODIES, fresh_ids
from tests.web_stack import WebStack, web_settings, web_stack

TEAMS = [Team(name="team-a", operators=["op1001"]),
         Team(name="team-b", operators=["op1002", "op1003"], supervisors=["lead-b"])]
IFACE = {"op1001": "PJSIP/1001", "op1002": "PJSIP/1002", "op1003": "PJSIP/1003"}
OPERATORS = ("op1001", "op1002")  # one in each team


@dataclass(frozen=True)
class Who:
    role: Role
    operator: str | None = None
    teams: tuple[str, ...] | None = None  # the teams it is limited to (None: all)
    products: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    personal: bool = True
    scope: TokenScope = field(default_factory=TokenScope)

    @property
    def viewer(self) -> bool:
        return self.role is Role.VIEWER

    @property
    def masked(self) -> bool:
        """Callers' numbers masked: no personal data, or a role of http.mask_numbers_for."""
        return not self.personal or self.role.value in MASKED_ROLES

    def members(self) -> set[str]:
        assert self.teams is not None
        return {op for t in TEAMS if t.name in self.teams for op in t.operators}

    def sees_operator(self, op: str) -> bool:
        if self.role is Role.OPERATOR:
            return op == self.operator
        if self.viewer:
            return False
        return self.teams is None or op in self.members()

    def sees_card(self, card: dict[str, Any]) -> bool:
        if self.role is Role.OPERATOR:
            return card["interface"] == IFACE[self.operator or ""]
        if self.viewer:
            return card["product"] in self.products or card["target"] in self.targets
        return self.teams is None or card["interface"] in {IFACE[o] for o in self.members()}


PRINCIPALS: dict[str, Who] = {
    "op1": Who(Role.OPERATOR, operator="op1001"),
    "sup": Who(Role.SUPERVISOR),
    "admin": Who(Role.ADMIN),
    "sup-a": Who(Role.SUPERVISOR, teams=("team-a",), scope=TokenScope(teams=("team-a",))),
    "lead-b": Who(Role.SUPERVISOR, teams=("team-b",)),  # scoped by teams[].supervisors
    "view-wallet": Who(Role.VIEWER, products=("wallet",), personal=False,
                       scope=TokenScope(products=("wallet",))),
    "view-wallet-pd": Who(Role.VIEWER, products=("wallet",),
                          scope=TokenScope(products=("wallet",), personal_data=True)),
    "view-terminal-ru": Who(Role.VIEWER, targets=("terminal-ru",), personal=False,
                            scope=TokenScope(targets=("terminal-ru",))),
}  # fmt: skip
CARDS = {  # one per team and line: (operator, product, target)
    "wallet-a": ("op1001", "wallet", "wallet-ru"),
    "terminal-b": ("op1002", "terminal", "terminal-ru"),
}
CALLER = "79001234567"
MASKED_ROLES = web_settings().http.mask_numbers_for  # the example config masks for operators


@pytest.fixture
async def desk() -> AsyncIterator[str]:
    async def ticket(request: web.Request) -> web.Response:
        return web.json_response({"id": "HD-1", "url": "https://hd.example/t/HD-1"}, status=201)

    app = web.Application()
    app.router.add_post("/tickets", ticket)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}/tickets"
    await server.close()


def scoped_settings(tmp_path: Path, desk_url: str) -> Any:
    s = web_settings(helpdesk=HelpdeskSettings(url=desk_url, secret="x", poll_s=0.05))
    rec = s.recordings.model_copy(update={"directory": str(tmp_path / "rec")})
    return s.model_copy(update={"teams": TEAMS, "recordings": rec})


async def seed(ws: WebStack, tmp_path: Path) -> dict[str, dict[str, Any]]:
    """The cards (answered today, each with a recording on disk) and the tokens."""
    app, now = ws.st.app, time.time()
    (tmp_path / "rec").mkdir()
    rec = RecordingStore(app.engine)
    out = {}
    for key, (op, product, target) in CARDS.items():
        number = app.numbers.next()
        fields = {"state": "closed", "kind": "inbound", "started_at": now - 60,
                  "answered_at": now - 50, "ended_at": now - 30, "interface": IFACE[op],
                  "operator": op, "product": product, "target": target, "queue": target,
                  "outcome": "answered", "wait_s": 10, "talk_s": 20, "caller_num": CALLER,
                  "caller_name": "Ivan", "caller_email": "ivan@example.com",
                  "language": "ru"}  # fmt: skip
        app.writer.submit(CardWrite(number, fields, insert=True))
        path = tmp_path / "rec" / f"ccrouter-{number}.wav"
        path.write_bytes(b"RIFF0000WAVE")
        await rec.started(number, str(path), f"u{number}", now - 50)
        await rec.finished(number, now - 30, 12, "hangup")
        await QcStore(app.engine).add_grade(card=number, operator=op, interface=IFACE[op],
                                            queue=target, at=now - 20, by="lead", score=80.0,
                                            items=[], comment="")  # fmt: skip
        out[key] = {"number": number, **fields}
    await app.writer.flush()
    store = TokenStore(app.engine)
    for name, who in PRINCIPALS.items():
        if name not in ws.tokens:
            ws.tokens[name], _ = await store.create(name, who.role, who.operator, who.scope)
    return out


def expected(ep: Endpoint, who: Who, card: dict[str, Any] | None, op: str | None) -> int | None:
    """The refusal this request must get, or None: allowed."""
    if who.role not in ep.roles:
        return 403
    if card is not None and not who.sees_card(card):
        return 403 if who.role is Role.OPERATOR else 404
    if op is not None and not who.sees_operator(op):
        return 403
    return None


Check = Callable[[Who, Any, dict[str, dict[str, Any]]], None]


def _cards(who: Who, body: Any, cards: dict[str, dict[str, Any]]) -> None:
    want = {c["number"] for c in cards.values() if who.sees_card(c)}
    assert {c["number"] for c in body["items"]} == want and body["total"] == len(want)
    for c in body["items"]:
        assert (c["caller_num"] == CALLER) != who.masked, c
        assert (c["caller_name"] == "Ivan") == who.personal, c
        assert (c["caller_email"] is not None) == who.personal, c


def _operator_ids(key: str) -> Check:
    def check(who: Who, body: Any, cards: dict[str, dict[str, Any]]) -> None:
        ids = {o[key] for o in body}
        assert ids and all(who.sees_operator(i) for i in ids), ids
        if who.teams is not None:
            assert ids == who.members()

    return check


def _calls(who: Who, body: Any, cards: dict[str, dict[str, Any]]) -> None:
    assert body == []  # no call in progress here (test_team_supervisor_live_view has some)


def _kpi(who: Who, body: Any, cards: dict[str, dict[str, Any]]) -> None:
    seen = [c for c in cards.values() if who.sees_card(c)]
    assert body["total"]["offered"] == len(seen) and body["total"]["answered"] == len(seen)
    assert {q["queue"] for q in body["queues"]} == {c["queue"] for c in seen}
    ops = {o["operator_id"] for o in body["operators"]}
    teams = {t["team"] for t in body["teams"]}
    if who.viewer:
        assert ops == set() and teams == set()  # the centre's own rows
    else:
        assert ops == {c["operator"] for c in seen}
        assert teams == (set(who.teams) if who.teams is not None else {t.name for t in TEAMS})


def _grades(who: Who, body: Any, cards: dict[str, dict[str, Any]]) -> None:
    ops = {g["operator"] for g in body["grades"]}
    assert ops and all(who.sees_operator(op) for op in ops), ops


def _qc_report(who: Who, body: Any, cards: dict[str, dict[str, Any]]) -> None:
    ops = {o["operator"] for o in body["operators"]}
    assert ops and all(who.sees_operator(op) for op in ops), ops
    teams = {t["team"] for t in body["teams"]}
    assert teams == {t.name for t in TEAMS if who.teams is None or t.name in who.teams}


FILTERED: dict[str, Check | None] = {
    "/api/v1/qc/grades": _grades,
    "/api/v1/reports/qc": _qc_report,
    "/api/v1/cards": _cards,
    "/api/v1/live/operators": _operator_ids("id"),
    "/api/v1/operators": _operator_ids("id"),
    "/api/v1/live/calls": _calls,
    "/api/v1/reports/kpi": _kpi,
    "/api/v1/live/stream": None,  # a stream: test_team_wallboard reads it
}


SCOPE_BODIES = {
    ("POST", "/api/v1/cards/{number}/grades"): lambda: {"items": dict.fromkeys(
        ("greeting", "identified", "solved", "polite"), True)},  # config/ccrouter.yaml's qc
}
AUTHORIZED_THEN_STATEFUL = {
    ("POST", "/api/v1/calls/{number}/spy"),  # a live call (test_qc_spy: spying allowed/refused)
    ("POST", "/api/v1/cards/{number}/grades"),  # the qc feature running (test_qc_grades)
}
"""Endpoints whose allowed callers may still get 409 here: what they act on is not in a state
to act on in this stack; their permission to is what the table checks."""


def cases(ep: Endpoint, cards: dict[str, dict[str, Any]]) -> list[tuple[dict[str, Any] | None,
                                                                         str | None]]:
    if ep.scoping is Scoping.CARD:
        return [(c, None) for c in cards.values()]
    if ep.scoping is Scoping.OPERATOR:
        return [(None, op) for op in OPERATORS]
    return [(None, None)]


async def test_every_role_scope_and_endpoint_is_allowed_or_refused(
    tmp_path: Path, desk: str
) -> None:
    async with web_stack(tmp_path, scoped_settings(tmp_path, desk), features=[helpdesk]) as ws:
        cards = await seed(ws, tmp_path)
        assert {(e.method, e.path) for e in ws.web.endpoints} >= {
            ("POST", "/api/v1/cards/{number}/tickets"), ("GET", "/api/v1/cards/{number}/recording")}
        tried = 0
        for ep in ws.web.endpoints:
            if ep.scoping is Scoping.FILTERED:
                assert ep.path in FILTERED, f"{ep.path}: a FILTERED endpoint needs its check"
            for card, op in cases(ep, cards):
                for name, who in PRINCIPALS.items():
                    ids = await fresh_ids(ws) if "{incident}" in ep.path or "{request}" in \
                        ep.path else {}  # fmt: skip
                    path = ep.path.format(number=card["number"] if card else "",
                                          operator=op or "", **ids)  # fmt: skip
                    body = {**BODIES, **SCOPE_BODIES}.get((ep.method, ep.path), lambda: None)()
                    if ep.method in ("POST", "PATCH", "PUT") and body is None:
                        body = {}
                    async with ws.client.request(ep.method, ws.base + path, json=body,
                                                 headers=ws.headers(name)) as r:
                        got = await r.json() if r.content_type == "application/json" else None
                    want = expected(ep, who, card, op)
                    what = f"{name} {ep.method} {path}: {r.status} {got}"
                    tried += 1
                    if want is not None:
                        assert r.status == want, what
                        assert set(got) == {"error", "message"}, what  # never data
                        continue
                    if (ep.method, ep.path) in AUTHORIZED_THEN_STATEFUL and r.status == 409:
                        assert set(got) == {"error", "message"}, what  # past the scope check:
                        continue  # the call is over / the qc feature is off in this stack
                    assert r.status in (200, 202), what
                    check = FILTERED.get(ep.path) if ep.scoping is Scoping.FILTERED else None
                    if check is not None and ep.method == "GET":
                        check(who, got, cards)
                    if card is not None and isinstance(got, dict) and "card" in got and \
                            isinstance(got["card"], dict):  # fmt: skip
                        assert (got["card"]["caller_num"] == CALLER) != who.masked, what
        assert tried > 8 * len(ws.web.endpoints)


async def test_openapi_states_roles_and_scope_of_every_endpoint(tmp_path: Path) -> None:
    async with web_stack(tmp_path, web_settings(teams=TEAMS)) as ws:
        _, doc = await ws.call("GET", "/api/v1/openapi.json")
        for ep in ws.web.endpoints:
            op = doc["paths"][ep.path][ep.method.lower()]
            assert op["x-roles"] == sorted(r.value for r in ep.roles)
            assert op["x-scope"]["kind"] == ep.scoping.value and op["x-scope"]["description"]
            assert "Roles:" in op["description"] and "Scope:" in op["description"]
        kpi = doc["paths"]["/api/v1/reports/kpi"]["get"]
        assert "viewer" in kpi["x-roles"] and kpi["x-scope"]["kind"] == "filtered"
        assert doc["paths"]["/api/v1/cards/{number}"]["patch"]["x-roles"] == [
            "admin", "operator", "supervisor"]

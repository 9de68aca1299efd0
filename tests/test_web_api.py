"""The HTTP API over real sockets: every endpoint with every role, no/invalid/revoked tokens,
card ownership, masking, edits through the card writer, bad input -> 400 naming the field,
and the OpenAPI document against the routes."""

from __future__ import annotations

import asyncio
import itertools
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ccrouter.sim import SimCaller
from ccrouter.web.auth import Role, TokenStore
from tests.stack import add_operator, wait_until
from tests.web_stack import WebStack, web_stack

WALLET_DID = "712000100"
ROLES = ("op1", "op2", "sup", "admin")
STAFF_ONLY = {"op1": 403, "op2": 403, "sup": 200, "admin": 200}
EVERYONE = dict.fromkeys(ROLES, 200)
OWNER_OR_STAFF = {"op1": 200, "op2": 403, "sup": 200, "admin": 200}

ADMIN_ONLY = {"op1": 403, "op2": 403, "sup": 403, "admin": 200}

# (method, path template) -> role -> status. op1 (op1001, PJSIP/1001) took the call.
EXPECTED: dict[tuple[str, str], dict[str, int]] = {
    ("GET", "/api/v1/me"): EVERYONE,
    ("GET", "/api/v1/cards"): EVERYONE,
    ("GET", "/api/v1/cards/{number}"): OWNER_OR_STAFF,
    ("PATCH", "/api/v1/cards/{number}"): OWNER_OR_STAFF,
    # recordings are off in this stack: the card has none (404), op2 may not hear op1's calls
    ("GET", "/api/v1/cards/{number}/recording"): {"op1": 404, "op2": 403, "sup": 404,
                                                  "admin": 404},
    ("GET", "/api/v1/cards/{number}/recording/info"): {"op1": 403, "op2": 403, "sup": 404,
                                                       "admin": 404},
    # the qc feature is not installed in this stack: nobody can listen in (409); grading is
    # off (no checklist: 400)
    ("POST", "/api/v1/calls/{number}/spy"): {"op1": 403, "op2": 403, "sup": 409, "admin": 409},
    ("GET", "/api/v1/cards/{number}/spy"): STAFF_ONLY,
    ("POST", "/api/v1/cards/{number}/grades"): {"op1": 403, "op2": 403, "sup": 400,
                                                "admin": 400},
    ("GET", "/api/v1/cards/{number}/grades"): OWNER_OR_STAFF,
    ("GET", "/api/v1/qc/grades"): EVERYONE,  # an operator: their own
    ("GET", "/api/v1/qc/checklist"): EVERYONE,
    ("GET", "/api/v1/reports/qc"): STAFF_ONLY,
    ("GET", "/api/v1/live/queues"): STAFF_ONLY,
    ("GET", "/api/v1/live/operators"): STAFF_ONLY,
    ("GET", "/api/v1/live/calls"): EVERYONE,
    ("GET", "/api/v1/live/stream"): STAFF_ONLY,
    ("GET", "/api/v1/operators/{operator}/stream"): OWNER_OR_STAFF,
    ("GET", "/api/v1/reports/kpi"): STAFF_ONLY,
    ("GET", "/api/v1/alerts"): STAFF_ONLY,
    ("GET", "/api/v1/incidents"): STAFF_ONLY,
    ("POST", "/api/v1/incidents"): STAFF_ONLY,
    ("DELETE", "/api/v1/incidents/{incident}"): STAFF_ONLY,
    ("GET", "/api/v1/callbacks"): STAFF_ONLY,
    ("POST", "/api/v1/callbacks/{request}/cancel"): STAFF_ONLY,
    ("POST", "/api/v1/outbound"): STAFF_ONLY,
    ("GET", "/api/v1/operators"): STAFF_ONLY,
    ("GET", "/api/v1/operators/{operator}"): OWNER_OR_STAFF,
    ("POST", "/api/v1/operators/{operator}/state"): OWNER_OR_STAFF,
    ("PUT", "/api/v1/operators/{operator}/skills"): ADMIN_ONLY,
    ("DELETE", "/api/v1/operators/{operator}/skills"): ADMIN_ONLY,
    ("POST", "/api/v1/admin/reload"): ADMIN_ONLY,
}
NUMBERS = itertools.count(79001230000)
BODIES: dict[tuple[str, str], Any] = {
    ("PATCH", "/api/v1/cards/{number}"): lambda: {"topic": "billing"},
    ("POST", "/api/v1/incidents"): lambda: {"text": "Wallet top-ups delayed", "for": "10m"},
    ("POST", "/api/v1/outbound"): lambda: {"number": str(next(NUMBERS)), "target": "wallet-ru"},
    ("POST", "/api/v1/operators/{operator}/state"): lambda: {"action": "pause",
                                                             "reason": "lunch"},
    ("PUT", "/api/v1/operators/{operator}/skills"): lambda: {"skills": {"ru": 50}},
    ("POST", "/api/v1/calls/{number}/spy"): lambda: {"mode": "listen"},
    ("POST", "/api/v1/cards/{number}/grades"): lambda: {"items": {}},
}


async def fresh_ids(ws: WebStack) -> dict[str, str]:
    """A new incident and callback request for each call (the allowed roles consume them)."""
    from ccrouter.callbacks.model import Kind
    from ccrouter.callbacks.store import CallbackStore
    from ccrouter.ivr.incidents import IncidentService

    engine = ws.st.app.engine
    incident = await IncidentService(engine, ws.st.settings.products).set(
        text="x", duration_s=60)
    added = await CallbackStore(engine).add(number=str(next(NUMBERS)), kind=Kind.OUTBOUND,
                                            target="wallet-ru", now=0.0, place_at=4e9)
    return {"incident": str(incident.id), "request": str(added.id)}


async def answered_call(ws: WebStack, caller: str = "79001234567") -> str:
    sim = ws.st.sim
    if "PJSIP/1001" not in sim.members("wallet-ru") and not any(
        m.interface == "PJSIP/1001" for m in sim.members("wallet-ru")
    ):
        add_operator(sim, "wallet-ru", "PJSIP/1001", "Dilnoza Karimova", answer_after_s=1,
                     talk_time_s=2)
    call = sim.place_call(SimCaller(caller, "Ivan", dialled=WALLET_DID))
    assert await asyncio.wait_for(call.finished, 10) == "answered"
    book = ws.st.app.tracker.book
    await wait_until(lambda: len(book) == 0, what="card closed")
    await ws.st.app.writer.flush()
    return str(call.variables["CCROUTER_CARD"])


async def status_of(ws: WebStack, method: str, path: str, who: str | None,
                    token: str | None = None, body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else ws.headers(who)
    async with ws.client.request(method, ws.base + path, headers=headers, json=body) as r:
        if r.content_type == "text/event-stream":
            return r.status, None  # a live stream: the status is enough
        return r.status, await r.json()


async def test_every_endpoint_with_every_role(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as ws:
        number = await answered_call(ws)
        routes = {(ep.method, ep.path) for ep in ws.web.endpoints}
        assert routes == set(EXPECTED), "every endpoint needs its row in EXPECTED"
        revoked = await ws.add_token("gone", Role.SUPERVISOR)
        (gone_id,) = [t.id for t in await TokenStore(ws.st.app.engine).list() if t.name == "gone"]
        assert await TokenStore(ws.st.app.engine).revoke(gone_id)
        for (method, path_t), by_role in EXPECTED.items():
            make_body = BODIES.get((method, path_t), lambda: None)
            cases: list[tuple[str | None, str | None, int]] = [
                *((who, None, want) for who, want in by_role.items()),
                *((None, token, 401) for token in (None, "ccr_not-a-token", revoked)),
            ]
            for who, token, want in cases:
                ids = await fresh_ids(ws) if "{incident}" in path_t or "{request}" in path_t else {}
                path = path_t.format(number=number, operator="op1001", **ids)
                got, body = await status_of(ws, method, path, who, token, make_body())
                assert got == want, f"{who or token} {method} {path}: {got} {body}"
                if want in (401, 403):
                    assert set(body) == {"error", "message"}, body  # never data


async def test_operators_see_only_their_cards_masked_and_staff_see_all(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as ws:
        mine = await answered_call(ws, "79001234567")
        add_operator(ws.st.sim, "wallet-uz", "PJSIP/1002", "Anna Smirnova", talk_time_s=1)
        _, sup = await ws.call("GET", "/api/v1/cards", "sup")
        assert sup["total"] == 1 and sup["items"][0]["caller_num"] == "79001234567"
        _, op1 = await ws.call("GET", "/api/v1/cards", "op1")
        assert [c["number"] for c in op1["items"]] == [mine]
        assert op1["items"][0]["caller_num"] == "7900***4567"  # http.mask_numbers_for: operator
        _, op2 = await ws.call("GET", "/api/v1/cards", "op2")
        assert op2["items"] == [] and op2["total"] == 0
        _, by_op = await ws.call("GET", "/api/v1/cards?operator=op1001&outcome=answered", "sup")
        assert by_op["total"] == 1
        _, none = await ws.call("GET", "/api/v1/cards?operator=op1002", "sup")
        assert none["total"] == 0


async def test_patch_card_goes_through_the_writer_and_search_by_topic(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as ws:
        number = await answered_call(ws)
        status, body = await ws.call("PATCH", f"/api/v1/cards/{number}", "op1",
                                     json={"topic": "Top-up 100%_off", "resolution": "refunded"})
        assert status == 200 and body["card"]["topic"] == "Top-up 100%_off"
        card = await ws.st.card(number)
        assert (card["topic"], card["resolution"], card["notes"]) == (
            "Top-up 100%_off", "refunded", None)
        await ws.call("PATCH", f"/api/v1/cards/{number}", "sup", json={"notes": "called back"})
        assert (await ws.st.card(number))["topic"] == "Top-up 100%_off"  # others untouched
        for topic, n in (("top-UP", 1), ("100%", 1), ("_off", 1), ("%x", 0), ("zzz", 0)):
            _, found = await ws.call("GET", f"/api/v1/cards?topic={quote(topic)}", "sup")
            assert found["total"] == n, topic
        status, got = await ws.call("GET", f"/api/v1/cards/{number}", "op1")
        assert status == 200 and got["card"]["notes"] == "called back" and got["linked"] == []


async def test_linked_cards_and_paging(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as ws:
        first = await answered_call(ws)
        second = await answered_call(ws)
        from ccrouter.calls.model.cards import CardWrite

        ws.st.app.writer.submit(CardWrite(second, {"repeat_of": first}))
        _, got = await ws.call("GET", f"/api/v1/cards/{first}", "sup")
        assert [c["number"] for c in got["linked"]] == [second]
        assert got["linked"][0]["link"] == {"field": "repeat_of", "direction": "to"}
        _, got = await ws.call("GET", f"/api/v1/cards/{second}", "sup")
        assert [c["number"] for c in got["linked"]] == [first]
        assert got["linked"][0]["link"] == {"field": "repeat_of", "direction": "from"}
        _, page1 = await ws.call("GET", "/api/v1/cards?limit=1", "sup")
        _, page2 = await ws.call("GET", f"/api/v1/cards?limit=1&offset={page1['next_offset']}",
                                 "sup")
        assert [page1["items"][0]["number"], page2["items"][0]["number"]] == [second, first]
        assert page1["total"] == 2 and page2["next_offset"] is None


BAD: list[tuple[str, str, Any, str]] = [
    ("GET", "/api/v1/cards?limit=0", None, "limit"),
    ("GET", "/api/v1/cards?limit=abc", None, "limit"),
    ("GET", "/api/v1/cards?offset=-1", None, "offset"),
    ("GET", "/api/v1/cards?from=yesterday", None, "from"),
    ("GET", "/api/v1/cards?from=2026-01-02&to=2026-01-01", None, "to"),
    ("GET", "/api/v1/cards?outcome=won", None, "outcome"),
    ("GET", "/api/v1/cards?operator=op9999", None, "operator"),
    ("GET", "/api/v1/cards?number=12a", None, "number"),
    ("GET", "/api/v1/cards?colour=red", None, "colour"),
    ("GET", "/api/v1/cards?limit=1&limit=2", None, "limit"),
    ("GET", "/api/v1/cards/12ab", None, "number"),
    ("GET", "/api/v1/reports/kpi?interval=week", None, "interval"),
    ("GET", "/api/v1/reports/kpi?queue=nope", None, "queue"),
    ("GET", "/api/v1/reports/kpi?from=2026-01-01&to=2024-01-01", None, "to"),
    ("GET", "/api/v1/reports/kpi?from=2020-01-01&to=2026-01-01", None, "to"),
    ("GET", "/api/v1/reports/kpi?format=xml", None, "format"),
    ("GET", "/api/v1/live/queues?x=1", None, "x"),
    ("PATCH", "/api/v1/cards/{n}", b"{not json", "body"),
    ("PATCH", "/api/v1/cards/{n}", b"[1, 2]", "body"),
    ("PATCH", "/api/v1/cards/{n}", {}, "body"),
    ("PATCH", "/api/v1/cards/{n}", {"topic": 5}, "topic"),
    ("PATCH", "/api/v1/cards/{n}", {"topic": "x" * 201}, "topic"),
    ("PATCH", "/api/v1/cards/{n}", {"outcome": "answered"}, "outcome"),
    ("PATCH", "/api/v1/cards/{n}", {"notes": "a\u0000b"}, "notes"),
]


async def test_bad_input_is_a_400_naming_the_field(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as ws:
        number = await answered_call(ws)
        before = await ws.st.card(number)
        for method, path, body, field in BAD:
            url = ws.base + path.format(n=number)
            kw: dict[str, Any] = {"data": body} if isinstance(body, bytes) else {"json": body}
            async with ws.client.request(method, url, headers=ws.headers("sup"), **kw) as r:
                got = await r.json()
            assert r.status == 400, (path, body, got)
            assert got["field"] == field and field in got["message"], (path, body, got)
        assert await ws.st.card(number) == before  # nothing half-applied
        status, body = await ws.call("GET", "/api/v1/cards/1234567", "sup")
        assert status == 404 and body["error"] == "not_found"
        status, body = await ws.call("GET", "/api/v1/nothing-here", "sup")
        assert status == 404 and body["error"] == "not_found"
        status, body = await ws.call("DELETE", "/api/v1/cards", "sup")
        assert status == 405


GARBAGE = ["", "x", "-1", "1e309", "\u0000", "9" * 60, "2026-13-45", "' OR 1=1", "ру"]


async def test_no_input_gives_a_500(tmp_path: Path) -> None:
    """Every query parameter of every JSON endpoint, with garbage: 200 or 400, never 500."""
    async with web_stack(tmp_path) as ws:
        await answered_call(ws)
        for ep in ws.web.endpoints:
            if ep.query is None or ep.stream:
                continue
            for name in ep.query.model_json_schema(by_alias=True)["properties"]:
                for value in GARBAGE:
                    async with ws.client.get(ws.base + ep.path, params={name: value},
                                             headers=ws.headers("sup")) as r:
                        await r.read()
                        assert r.status in (200, 400), (ep.path, name, value, r.status)


async def test_openapi_document_matches_the_routes(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as ws:
        status, doc = await ws.call("GET", "/api/v1/openapi.json")
        assert status == 200 and doc["openapi"].startswith("3.")
        documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
        served = set()
        for route in ws.web.web_app.router.routes():
            info = route.resource.get_info() if route.resource else {}
            path = info.get("path") or info.get("formatter")
            if route.method != "HEAD" and path and not str(path).startswith("/static"):
                served.add((route.method, path))
        assert documented == served
        for (method, path) in documented:
            op = doc["paths"][path][method.lower()]
            params = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert params == set(re.findall(r"{(\w+)}", path))


async def test_healthz_reports_ami_down(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as ws:
        status, body = await ws.call("GET", "/healthz")
        assert status == 200 and body["ami_connected"] and body["db_writable"]
        ws.st.sim.set_half_open(True)
        await wait_until(lambda: not ws.st.app.ami.connected, what="AMI lost")
        status, body = await ws.call("GET", "/healthz")
        assert status == 503 and body["status"] == "degraded" and not body["ami_connected"]
        ws.st.sim.set_half_open(False)
        await wait_until(lambda: ws.st.app.ami.connected, what="AMI back")

"""Incidents, callbacks/outbound and operators through the API: the other features' services
see the change; bad input is a 400 naming the field."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ccrouter.routing.state import OperatorService, OperatorStore
from tests.web_stack import web_stack


async def test_incidents_set_list_clear(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as ws:
        status, inc = await ws.call("POST", "/api/v1/incidents", "sup", json={
            "product": ["wallet"], "text": "Top-ups delayed", "for": "1h"})
        assert status == 200 and inc["products"] == ["wallet"] and inc["created_by"] == "sup"
        assert inc["expires_at"] - inc["starts_at"] == 3600
        _, active = await ws.call("GET", "/api/v1/incidents", "sup")
        assert [i["id"] for i in active] == [inc["id"]]
        status, _ = await ws.call("DELETE", f"/api/v1/incidents/{inc['id']}", "admin")
        assert status == 200
        _, active = await ws.call("GET", "/api/v1/incidents", "sup")
        _, every = await ws.call("GET", "/api/v1/incidents?all=true", "sup")
        assert active == [] and every[0]["cleared_at"] is not None
        status, body = await ws.call("DELETE", f"/api/v1/incidents/{inc['id']}", "sup")
        assert status == 404
        for bad, field in (({"product": ["tea"], "text": "x", "for": "1h"}, "body"),
                           ({"text": "x"}, "body"),
                           ({"text": "x", "for": "soon"}, "for"),
                           ({"text": "x", "for": -1}, "for"),
                           ({"text": "x", "for": True}, "for"),
                           ({"text": "x", "for": "40d"}, "for"),
                           ({"text": "x", "duration_s": -1}, "duration_s"),
                           ({"text": "x", "for": "1h", "duration_s": 60}, "duration_s"),
                           ({"text": "x", "for": "1h", "product": "wallet",
                             "products": ["wallet"]}, "products"),
                           ({"text": "x", "for": "1h", "colour": 1}, "colour")):
            status, body = await ws.call("POST", "/api/v1/incidents", "sup", json=bad)
            assert status == 400 and body["field"] == field, (bad, body)
        status, body = await ws.call("DELETE", "/api/v1/incidents/abc", "sup")
        assert status == 400 and body["field"] == "incident"


async def test_incidents_take_the_cli_words_and_still_the_old_ones(tmp_path: Path) -> None:
    """`product` (one or a list), `for` (`--for`'s 90m/1h/2h30m/1d or seconds), `until`; the
    first API's `products`, `duration_s`, `expires_at` still work, marked deprecated."""
    async with web_stack(tmp_path) as ws:
        _, one = await ws.call("POST", "/api/v1/incidents", "sup", json={
            "product": "terminal", "text": "x", "for": "2h30m"})
        assert one["products"] == ["terminal"] and one["expires_at"] - one["starts_at"] == 9000
        _, secs = await ws.call("POST", "/api/v1/incidents", "sup", json={
            "text": "x", "for": 90})
        assert secs["products"] == [] and secs["expires_at"] - secs["starts_at"] == 90
        end = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
        status, until = await ws.call("POST", "/api/v1/incidents", "sup", json={
            "product": ["wallet", "terminal"], "text": "x", "until": end.isoformat()})
        assert status == 200 and until["products"] == ["wallet", "terminal"]
        assert abs(until["expires_at"] - end.timestamp()) < 1e-3
        status, far = await ws.call("POST", "/api/v1/incidents", "sup", json={
            "text": "x", "until": "2099-01-01T00:00:00Z"})
        assert status == 400 and far["field"] == "body" and "within 31 days" in far["message"]
        status, old = await ws.call("POST", "/api/v1/incidents", "sup", json={
            "products": ["wallet"], "text": "x", "duration_s": 600})
        assert status == 200 and old["products"] == ["wallet"]
        assert old["expires_at"] - old["starts_at"] == 600
        _, doc = await ws.call("GET", "/api/v1/openapi.json")
        post = doc["paths"]["/api/v1/incidents"]["post"]
        schema = post["requestBody"]["content"]["application/json"]["schema"]["properties"]
        assert {"product", "for", "until"} <= set(schema)
        assert all(schema[f].get("deprecated") is True
                   for f in ("products", "duration_s", "expires_at"))
        assert not any(schema[f].get("deprecated") for f in ("product", "for", "until"))


async def test_outbound_schedule_list_cancel(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as ws:
        body = {"number": "79001239999", "target": "wallet-uz", "at": "2030-01-01T10:00"}
        status, r = await ws.call("POST", "/api/v1/outbound", "sup", json=body)
        assert status == 200 and r["kind"] == "outbound" and r["state"] == "pending"
        assert r["language"] == "uz" and r["product"] == "wallet"
        status, dup = await ws.call("POST", "/api/v1/outbound", "sup", json=body)
        assert status == 409 and dup["field"] == "number"
        _, listed = await ws.call("GET", "/api/v1/callbacks?kind=outbound&state=pending", "sup")
        assert [x["id"] for x in listed] == [r["id"]]
        status, done = await ws.call("POST", f"/api/v1/callbacks/{r['id']}/cancel", "sup")
        assert status == 200 and done["state"] == "cancelled"
        status, _ = await ws.call("POST", f"/api/v1/callbacks/{r['id']}/cancel", "sup")
        assert status == 409
        status, _ = await ws.call("POST", "/api/v1/callbacks/999/cancel", "sup")
        assert status == 404
        for bad, field in (({**body, "target": "nope"}, "target"),
                           ({**body, "number": "12ab"}, "number"),
                           ({**body, "language": "fr"}, "language"),
                           ({**body, "at": "soon"}, "at")):
            status, got = await ws.call("POST", "/api/v1/outbound", "sup", json=bad)
            assert status == 400 and got["field"] == field, (bad, got)
        status, got = await ws.call("GET", "/api/v1/callbacks?state=lost", "sup")
        assert status == 400 and got["field"] == "state"


async def test_operator_state_and_skills(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as ws:
        service = OperatorService(ws.st.settings, OperatorStore(ws.st.app.engine))
        status, me = await ws.call("POST", "/api/v1/operators/op1001/state", "op1",
                                   json={"action": "pause", "reason": "lunch"})
        assert status == 200 and me["paused"] and me["pause_reason"] == "lunch"
        state = await service.state("op1001")
        assert state.paused and state.pause_reason == "lunch"
        status, _ = await ws.call("POST", "/api/v1/operators/op1002/state", "op1",
                                  json={"action": "login"})
        assert status == 403
        status, got = await ws.call("POST", "/api/v1/operators/op1001/state", "op1",
                                    json={"action": "nap"})
        assert status == 400 and got["field"] == "action"
        status, got = await ws.call("PUT", "/api/v1/operators/op1003/skills", "admin",
                                    json={"skills": {"uz": 90}})
        assert status == 200 and got["skills"]["uz"] == 90
        assert (await service.state("op1003")).skills["uz"] == 90
        for bad in ({"skills": {"uz": 101}}, {"skills": {"klingon": 5}}, {"skills": "all"}):
            status, got = await ws.call("PUT", "/api/v1/operators/op1003/skills", "admin",
                                        json=bad)
            assert status == 400 and got["field"] == "skills", (bad, got)
        status, got = await ws.call("DELETE", "/api/v1/operators/op1003/skills", "admin")
        assert status == 200 and got["skills"]["uz"] == 40  # the config's level again
        status, listed = await ws.call("GET", "/api/v1/operators", "sup")
        assert status == 200 and {o["id"] for o in listed} >= {"op1001", "op1006"}
        status, _ = await ws.call("GET", "/api/v1/operators/op9", "sup")
        assert status == 404

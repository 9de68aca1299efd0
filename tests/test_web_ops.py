"""Incidents, callbacks/outbound and operators through the API: the other features' services
see the change; bad input is a 400 naming the field."""

from __future__ import annotations

from pathlib import Path

from ccrouter.routing.state import OperatorService, OperatorStore
from tests.web_stack import web_stack


async def test_incidents_set_list_clear(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as ws:
        status, inc = await ws.call("POST", "/api/v1/incidents", "sup", json={
            "products": ["wallet"], "text": "Top-ups delayed", "duration_s": 3600})
        assert status == 200 and inc["products"] == ["wallet"] and inc["created_by"] == "sup"
        _, active = await ws.call("GET", "/api/v1/incidents", "sup")
        assert [i["id"] for i in active] == [inc["id"]]
        status, _ = await ws.call("DELETE", f"/api/v1/incidents/{inc['id']}", "admin")
        assert status == 200
        _, active = await ws.call("GET", "/api/v1/incidents", "sup")
        _, every = await ws.call("GET", "/api/v1/incidents?all=true", "sup")
        assert active == [] and every[0]["cleared_at"] is not None
        status, body = await ws.call("DELETE", f"/api/v1/incidents/{inc['id']}", "sup")
        assert status == 404
        for bad, field in (({"products": ["tea"], "text": "x", "duration_s": 60}, "body"),
                           ({"text": "x"}, "body"),
                           ({"text": "x", "duration_s": -1}, "duration_s"),
                           ({"text": "x", "duration_s": 60, "colour": 1}, "colour")):
            status, body = await ws.call("POST", "/api/v1/incidents", "sup", json=bad)
            assert status == 400 and body["field"] == field, (bad, body)
        status, body = await ws.call("DELETE", "/api/v1/incidents/abc", "sup")
        assert status == 400 and body["field"] == "incident"


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

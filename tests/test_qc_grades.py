"""QC grading: the score from the weighted checklist (pure), grades on a card over real HTTP
per role, an operator's last grades, and the QC report per operator and period (JSON, CSV)."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest

from ccrouter.config import Settings
from ccrouter.config.qc import ChecklistItem, QcSettings
from ccrouter.qc.model import GradeError, GradeRow, grade, period_start, summarise
from ccrouter.sim import SimCaller
from tests.stack import add_operator, wait_until
from tests.web_stack import WebStack, web_settings, web_stack

CHECKLIST = [ChecklistItem(id="greeting", text="Greeted by name", weight=1),
             ChecklistItem(id="solved", text="Solved the question", weight=3)]  # fmt: skip


def qc_settings() -> Settings:
    s = web_settings()
    return s.model_copy(update={"qc": QcSettings(checklist=CHECKLIST, last_grades=2)})


def test_score_is_the_met_share_of_the_weights() -> None:
    assert grade(CHECKLIST, {"greeting": True, "solved": True}).score == 100.0
    assert grade(CHECKLIST, {"greeting": True, "solved": False}).score == 25.0
    g = grade(CHECKLIST, {"greeting": False, "solved": True})
    assert g.score == 75.0
    assert g.items[1] == {"id": "solved", "text": "Solved the question", "weight": 3.0,
                          "met": True}
    with pytest.raises(GradeError, match=r"items\.polite: not a checklist item") as e:
        grade(CHECKLIST, {"greeting": True, "solved": True, "polite": True})
    assert e.value.field == "items.polite"
    with pytest.raises(GradeError, match=r"items\.solved: not graded"):
        grade(CHECKLIST, {"greeting": True})
    with pytest.raises(GradeError, match=r"no qc\.checklist"):
        grade([], {})


def test_checklist_config_errors() -> None:
    with pytest.raises(ValueError, match="appears twice"):
        QcSettings(checklist=[CHECKLIST[0], CHECKLIST[0]])
    with pytest.raises(ValueError, match="greater than 0"):
        ChecklistItem(id="x", text="x", weight=0)


def test_periods_and_summary() -> None:
    tz = "Asia/Tashkent"  # UTC+5
    wed = dt.datetime(2026, 12, 2, 20, 30, tzinfo=dt.UTC).timestamp()  # Thu 01:30 local
    assert period_start(wed, "day", tz) == "2026-12-03"
    assert period_start(wed, "week", tz) == "2026-11-30"
    assert period_start(wed, "month", tz) == "2026-12-01"
    rows = [GradeRow("op1001", "", wed, 50.0), GradeRow("op1001", "", wed + 86400, 100.0),
            GradeRow("op1002", "", wed, 80.0)]  # fmt: skip
    out = summarise(rows, "week", tz)
    assert out["total"] == {"grades": 3, "average": 76.7, "lowest": 50.0, "highest": 100.0}
    assert out["operators"][0] == {"operator": "op1001", "grades": 2, "average": 75.0,
                                   "lowest": 50.0, "highest": 100.0}
    assert [(p["operator"], p["start"], p["grades"]) for p in out["periods"]] == [
        ("op1001", "2026-11-30", 2), ("op1002", "2026-11-30", 1)]
    days = summarise(rows, "day", tz)["periods"]
    assert [(p["start"], p["average"]) for p in days][:2] == [("2026-12-03", 50.0),
                                                             ("2026-12-04", 100.0)]
    assert out["teams"] == []  # no teams yet
    assert summarise([], "day", tz)["total"]["average"] is None


async def finished_call(ws: WebStack, patience_s: float = 60.0) -> tuple[str, str]:
    sim = ws.st.sim
    if not any(m.interface == "PJSIP/1001" for m in sim.members("wallet-ru")):
        add_operator(sim, "wallet-ru", "PJSIP/1001", "Dilnoza Karimova", answer_after_s=1,
                     talk_time_s=2)
    c = sim.place_call(SimCaller("79001234567", "Ivan", dialled="712000100",
                                 patience_s=patience_s))  # fmt: skip
    outcome = await asyncio.wait_for(c.finished, 10)
    await wait_until(lambda: len(ws.st.app.tracker.book) == 0, what="card closed")
    return str(c.variables["CCROUTER_CARD"]), outcome


async def test_grades_on_a_card_by_role_and_the_report(tmp_path: Path) -> None:
    async with web_stack(tmp_path, qc_settings()) as ws:
        card, outcome = await finished_call(ws)
        assert outcome == "answered"
        good = {"items": {"greeting": True, "solved": True}, "comment": "fine"}
        status, body = await ws.call("POST", f"/api/v1/cards/{card}/grades", "op1", json=good)
        assert status == 403 and "role operator may not POST" in body["message"]
        status, body = await ws.call("POST", f"/api/v1/cards/{card}/grades", "sup",
                                     json={"items": {"greeting": True}})
        assert status == 400 and body["field"] == "items.solved"
        status, first = await ws.call("POST", f"/api/v1/cards/{card}/grades", "sup", json=good)
        assert status == 200, first
        assert (first["score"], first["operator"], first["graded_by"]) == (100.0, "op1001", "sup")
        half = {"items": {"greeting": True, "solved": False}}
        status, second = await ws.call("POST", f"/api/v1/cards/{card}/grades", "admin", json=half)
        assert status == 200 and second["score"] == 25.0

        status, body = await ws.call("GET", f"/api/v1/cards/{card}/grades", "op1")  # own call
        assert status == 200 and [g["score"] for g in body["grades"]] == [100.0, 25.0]
        assert body["grades"][0]["items"][0]["met"] is True and body["recorded"] is False
        status, body = await ws.call("GET", f"/api/v1/cards/{card}/grades", "op2")
        assert status == 403

        status, body = await ws.call("GET", "/api/v1/qc/grades?operator=op1001", "sup")
        assert status == 200 and [g["score"] for g in body["grades"]] == [25.0, 100.0]
        status, body = await ws.call("GET", "/api/v1/qc/grades?operator=op1001&limit=1", "op1")
        assert status == 200 and len(body["grades"]) == 1
        status, _ = await ws.call("GET", "/api/v1/qc/grades?operator=op1001", "op2")
        assert status == 403
        status, body = await ws.call("GET", "/api/v1/qc/grades", "op2")  # their own: none
        assert status == 200 and (body["operator"], body["grades"]) == ("op1002", [])
        status, body = await ws.call("GET", "/api/v1/qc/grades", "sup")  # everyone's, limit 2
        assert status == 200 and len(body["grades"]) == 2

        status, rep = await ws.call("GET", "/api/v1/reports/qc?interval=month", "sup")
        assert status == 200, rep
        assert rep["total"] == {"grades": 2, "average": 62.5, "lowest": 25.0, "highest": 100.0}
        assert [(o["operator"], o["grades"]) for o in rep["operators"]] == [("op1001", 2)]
        assert len(rep["periods"]) == 1 and rep["periods"][0]["start"].endswith("-01")
        status, _ = await ws.call("GET", "/api/v1/reports/qc", "op1")
        assert status == 403
        status, text = await ws.call("GET", "/api/v1/reports/qc?format=csv&operator=op1001",
                                     "sup")  # fmt: skip
        assert status == 200
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [(r["section"], r["operator"], r["grades"], r["average"]) for r in rows][:2] == [
            ("total", "", "2", "62.5"), ("operator", "op1001", "2", "62.5")]
        status, body = await ws.call("GET", "/api/v1/reports/qc?operator=nobody", "sup")
        assert status == 400 and body["field"] == "operator"
        status, body = await ws.call(
            "GET", "/api/v1/reports/qc?from=2026-12-02T10:00&to=2026-12-01T10:00", "sup")
        assert status == 400 and body["field"] == "to"
        status, body = await ws.call("GET", "/api/v1/reports/qc?from=2020-01-01&to=2020-02-01",
                                     "sup")  # fmt: skip
        assert status == 200 and body["total"]["grades"] == 0


async def test_unanswered_call_cannot_be_graded(tmp_path: Path) -> None:
    async with web_stack(tmp_path, qc_settings()) as ws:
        sim = ws.st.sim
        c = sim.place_call(SimCaller("79001234568", dialled="712000100", patience_s=0.5))
        assert await asyncio.wait_for(c.finished, 10) == "abandoned"
        await wait_until(lambda: len(ws.st.app.tracker.book) == 0, what="card closed")
        card = str(c.variables["CCROUTER_CARD"])
        body: Any
        status, body = await ws.call("POST", f"/api/v1/cards/{card}/grades", "sup",
                                     json={"items": {"greeting": True, "solved": True}})
        assert status == 409 and "not answered" in body["message"]
        status, body = await ws.call("POST", "/api/v1/cards/999/grades", "sup",
                                     json={"items": {}})
        assert status == 404
        status, body = await ws.call("GET", "/api/v1/qc/checklist", "op1")
        assert status == 200 and [i["id"] for i in body["items"]] == ["greeting", "solved"]

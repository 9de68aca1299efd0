"""`/api/v1/reports/kpi` over real sockets: calls placed through the simulator, JSON and CSV."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

from ccrouter.sim import SimCaller
from tests.stack import wait_until
from tests.test_web_api import answered_call
from tests.web_stack import web_stack

TERMINAL_DID = "712000200"


async def test_kpi_report_json_and_csv(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as ws:
        await answered_call(ws)
        await answered_call(ws)
        calls = [ws.st.sim.place_call(SimCaller(n, dialled=TERMINAL_DID, patience_s=p))
                 for n, p in (("79001110000", 8), ("79002220000", 2))]
        assert await asyncio.wait_for(asyncio.gather(*(c.finished for c in calls)), 10) == [
            "abandoned", "abandoned"]
        await wait_until(lambda: len(ws.st.app.tracker.book) == 0, what="cards closed")
        await ws.st.app.writer.flush()  # reports read the database (group commit: <= 50 ms)
        status, r = await ws.call("GET", "/api/v1/reports/kpi?interval=day", "sup")
        assert status == 200
        total = r["total"]
        assert (total["offered"], total["answered"], total["abandoned"],
                total["short_abandons"]) == (4, 2, 1, 1)
        assert total["sl"] == round(2 / 3, 4) and total["aar"] == round(1 / 3, 4)
        assert total["handled"] == 0.5 and total["aht_s"] == 2.0
        queues = {q["queue"]: q for q in r["queues"]}
        assert queues["terminal-ru"]["abandoned"] == 1 and queues["wallet-ru"]["answered"] == 2
        assert [o["operator_id"] for o in r["operators"]] == ["op1001"]
        assert len(r["intervals"]) == 1 and r["intervals"][0]["offered"] == 4
        assert sum(h["offered"] for h in r["hourly"]) == 4
        assert all(h["staffing"]["agents"] >= 1 for h in r["hourly"])
        _, only = await ws.call("GET", "/api/v1/reports/kpi?queue=wallet-ru", "sup")
        assert only["total"]["offered"] == 2 and only["total"]["sl"] == 1.0
        status, text = await ws.call("GET", "/api/v1/reports/kpi?format=csv", "admin")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert status == 200 and rows[0]["section"] == "total" and rows[0]["offered"] == "4"
        assert {r["key"] for r in rows if r["section"] == "queue"} == {"wallet-ru",
                                                                     "terminal-ru"}
        assert any(r["section"] == "hourly_load" and r["agents_needed"] for r in rows)
        status, via_accept = await ws.call("GET", "/api/v1/reports/kpi", "sup",
                                           headers={"Accept": "text/csv"})
        assert status == 200 and via_accept.startswith("section,key,start,offered")
        _, empty = await ws.call("GET", "/api/v1/reports/kpi?from=2020-01-01&to=2020-01-02",
                                 "sup")
        assert empty["total"]["offered"] == 0 and empty["total"]["sl"] is None

"""Quality control in a real headless Chromium: a recorded call plays in the supervisor's card
view and in the operator's page (the `<audio>` element loads the WAV the simulator wrote and
reports its duration), a grade is given from the card view, and the wallboard's listen button
rings the supervisor's phone with ChanSpy. Skips only when Chromium is not installed."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from pathlib import Path

import pytest

from ccrouter.config import Settings
from ccrouter.demo.session import sim_recording
from ccrouter.qc.feature import install as qc
from ccrouter.recordings.feature import install as recordings
from ccrouter.sim import SimCaller, SimPhone
from tests.stack import add_operator, wait_until
from tests.test_browser import CHROMIUM, chromium
from tests.web_stack import WebStack, web_settings, web_stack

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                "(apt-get install -y chromium)")
SECONDS = 2.0  # the length of the WAV file the simulator writes per answered call


def qc_settings(tmp_path: Path) -> Settings:
    s = web_settings()
    rec = s.recordings.model_copy(update={
        "enabled": True, "directory": "/var/spool/asterisk/monitor/ccrouter",
        "read_directory": str(tmp_path / "rec")})  # fmt: skip
    spy = s.qc.spy.model_copy(update={"devices": {"sup": "PJSIP/100"}})
    return s.model_copy(update={"recordings": rec,
                                "qc": s.qc.model_copy(update={"spy": spy})})


async def recorded_call(ws: WebStack, talk_s: float = 2.0) -> str:
    sim = ws.st.sim
    if not any(m.interface == "PJSIP/1001" for m in sim.members("wallet-ru")):
        add_operator(sim, "wallet-ru", "PJSIP/1001", "Dilnoza Karimova", answer_after_s=1,
                     talk_time_s=talk_s)
    c = sim.place_call(SimCaller("79001234567", "Ivan", dialled="712000100"))
    assert await asyncio.wait_for(c.finished, 10) == "answered"
    card = str(c.variables["CCROUTER_CARD"])

    async def done() -> None:
        while True:
            status, info = await ws.call("GET", f"/api/v1/cards/{card}/recording/info", "sup")
            if status == 200 and info["state"] == "done":
                return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(done(), 5)
    return card


def stack(tmp_path: Path) -> contextlib.AbstractAsyncContextManager[WebStack]:
    s = qc_settings(tmp_path)
    rec = sim_recording(s)
    assert rec is not None
    return web_stack(tmp_path, s, features=[recordings, qc],
                     recording=dataclasses.replace(rec, seconds=SECONDS))


async def test_card_view_plays_the_recording_and_grades_it(tmp_path: Path) -> None:
    async with stack(tmp_path) as ws, chromium(tmp_path, ws.client) as page:
        card = await recorded_call(ws)
        await page.send("Page.navigate", url=f"{ws.base}/card?number={card}#token="
                        f"{ws.tokens['sup']}")  # fmt: skip
        await page.wait_js("document.getElementById('player').readyState >= 1", timeout=10)
        duration = await page.js("document.getElementById('player').duration")
        assert abs(duration - SECONDS) < 0.05, duration
        assert await page.js("document.getElementById('error').textContent") == ""
        await page.wait_js("document.querySelectorAll('input[data-item]').length === 4")
        await page.js("""(() => {
            for (const id of ['greeting', 'solved'])
                document.querySelector(`input[data-item=${id}]`).checked = true;
            document.getElementById('comment').value = 'good call';
            document.getElementById('grade').click(); })()""")
        await page.wait_js("document.getElementById('grade-status').textContent === "
                           "'graded 66.7'")  # fmt: skip
        await page.wait_js("document.querySelectorAll('#grades tr').length === 1")
        status, body = await ws.call("GET", f"/api/v1/cards/{card}/grades", "sup")
        assert status == 200 and body["grades"][0]["comment"] == "good call"
        # the audit saw the browser's requests
        status, info = await ws.call("GET", f"/api/v1/cards/{card}/recording/info", "sup")
        assert {(p["who"], p["result"]) for p in info["plays"]} == {("sup", "played")}
        # the wallboard's operator view shows the operator's last grades
        await page.send("Page.navigate", url=f"{ws.base}/wallboard#token={ws.tokens['sup']}")
        await page.wait_js("!!document.querySelector('[data-operator=\"op1001\"]')")
        await page.js("document.querySelector('[data-operator=\"op1001\"]').click()")
        await page.wait_js("!document.getElementById('op-grades').hidden")
        row = await page.js("document.querySelector('#op-grades-rows tr').textContent")
        assert card in row and "66.7" in row and "good call" in row


async def test_operator_page_plays_a_recorded_call_from_the_history(tmp_path: Path) -> None:
    async with stack(tmp_path) as ws, chromium(tmp_path, ws.client) as page:
        first = await recorded_call(ws)
        await page.send("Page.navigate", url=f"{ws.base}/operator#token={ws.tokens['op1']}")
        await page.wait_js("document.getElementById('conn').textContent === 'live'")
        ws.st.sim.place_call(SimCaller("79001234567", "Ivan", dialled="712000100"))
        await page.wait_js(f"!!document.querySelector('button[data-play=\"{first}\"]')", 10)
        await page.js(f"document.querySelector('button[data-play=\"{first}\"]').click()")
        await page.wait_js("document.getElementById('player').readyState >= 1", timeout=10)
        duration = await page.js("document.getElementById('player').duration")
        assert abs(duration - SECONDS) < 0.05, duration


async def test_wallboard_listen_button_rings_the_supervisor(tmp_path: Path) -> None:
    async with stack(tmp_path) as ws, chromium(tmp_path, ws.client) as page:
        ws.st.sim.add_phone(SimPhone("PJSIP/100"))
        add_operator(ws.st.sim, "wallet-ru", "PJSIP/1001", "Dilnoza Karimova",
                     answer_after_s=1, talk_time_s=200)
        await page.send("Page.navigate", url=f"{ws.base}/wallboard#token={ws.tokens['sup']}")
        c = ws.st.sim.place_call(SimCaller("79001234567", "Ivan", dialled="712000100"))
        await wait_until(lambda: any(v.answered for v in ws.st.app.tracker.book.views()),
                         what="answered")  # fmt: skip
        card = c.variables["CCROUTER_CARD"]
        button = f"button[data-spy=\"whisper\"][data-card=\"{card}\"]"
        await page.wait_js(f"!!document.querySelector('{button}')", 5)
        await page.js(f"document.querySelector('{button}').click()")
        await page.wait_js("document.getElementById('spy-status').textContent.startsWith("
                           "'ringing PJSIP/100')")  # fmt: skip

        async def listening() -> None:
            while True:
                status, rows = await ws.call("GET", f"/api/v1/cards/{card}/spy", "sup")
                if status == 200 and rows and rows[0]["state"] == "listening":
                    return
                await asyncio.sleep(0.05)

        await asyncio.wait_for(listening(), 5)
        req = ws.st.sim.originated[-1]
        assert (req.channel, req.app) == ("PJSIP/100", "ChanSpy") and req.data.endswith("qwEu")


async def test_card_view_lists_linked_cards_with_how_they_are_linked(tmp_path: Path) -> None:
    from ccrouter.calls.model.cards import CardWrite

    async with stack(tmp_path) as ws, chromium(tmp_path, ws.client) as page:
        first = await recorded_call(ws)
        second = await recorded_call(ws)
        ws.st.app.writer.submit(CardWrite(second, {"transfer_of": first}))
        for _ in range(100):  # the write is committed
            _, got = await ws.call("GET", f"/api/v1/cards/{first}", "sup")
            if got["linked"]:
                break
            await asyncio.sleep(0.05)
        for card, other, label in ((first, second, "its transfer"),
                                   (second, first, "transfer of")):  # fmt: skip
            await page.send("Page.navigate", url=f"{ws.base}/card?number={card}#token="
                            f"{ws.tokens['sup']}")  # fmt: skip
            row = f"#linked tr[data-card=\"{other}\"]"
            await page.wait_js(f"!!document.querySelector('{row}')", 10)
            assert await page.js(f"document.querySelector('{row} td:nth-child(2)').textContent"
                                 ) == label  # fmt: skip
            assert await page.js("document.getElementById('linked-section').hidden") is False

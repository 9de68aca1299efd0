"""The operator page in headless Chromium (tests/test_browser.py's DevTools driver): an
operator creates a second-line ticket from the card form against a real local helpdesk stub
whose first answer comes after the client's timeout, and exactly one ticket is made; after the
call the page counts down to the card deadline until topic and resolution are saved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ccrouter.config.helpdesk import HelpdeskSettings
from ccrouter.helpdesk.feature import install as helpdesk
from ccrouter.sim import SimCaller
from tests import test_helpdesk
from tests.stack import add_operator, wait_until
from tests.test_browser import CHROMIUM, chromium
from tests.test_helpdesk import SECRET, Helpdesk
from tests.web_stack import web_settings, web_stack

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                "(apt-get install -y chromium)")


desk = test_helpdesk.desk  # the helpdesk stub (a real local HTTP server) as a fixture


def js_set(values: dict[str, str]) -> str:
    sets = "".join(f"document.getElementById({json.dumps(k)}).value = {json.dumps(v)};"
                   for k, v in values.items())
    return f"(() => {{ {sets} document.getElementById('save').click(); }})()"


async def test_ticket_from_the_operator_page_and_the_card_countdown(
    tmp_path: Path, desk: tuple[Helpdesk, str]
) -> None:
    hd, url = desk
    hd.stall_once = True  # it takes the ticket but answers after the client gave up
    settings = web_settings(helpdesk=HelpdeskSettings(
        url=url, secret=SECRET, timeout_s=0.5, backoff_s=0.05, backoff_max_s=0.2, poll_s=0.05))
    async with (web_stack(tmp_path, settings, features=[helpdesk]) as ws,
                chromium(tmp_path, ws.client) as page):
        add_operator(ws.st.sim, "wallet-ru", "PJSIP/1001", "Dilnoza Karimova",
                     answer_after_s=1, talk_time_s=3000)
        await page.send("Page.navigate", url=f"{ws.base}/operator#token={ws.tokens['op1']}")
        await page.wait_js("document.getElementById('conn').textContent === 'live'")
        call = ws.st.sim.place_call(SimCaller("79001234567", "Ivan", dialled="712000100"))
        book = ws.st.app.tracker.book
        await wait_until(lambda: any(v.answered for v in book.views()), what="answered")
        number = call.variables["CCROUTER_CARD"]
        await page.wait_js(f"document.getElementById('card-number').textContent === '{number}'")
        await page.js(js_set({"topic": "Card blocked", "caller_email": "ivan@example.com"}))
        await page.wait_js("document.getElementById('status').textContent === 'saved'")

        await page.js("document.getElementById('ticket').click()")
        assert await page.js("document.getElementById('ticket').disabled") is True
        link = await page.wait_js("document.getElementById('ticket-link').textContent", 10)
        assert link == "HD-1"
        keys = {r["headers"]["Idempotency-Key"] for r in hd.requests}
        assert len(hd.tickets) == 1 and len(keys) == 1
        assert len(hd.requests) >= 2  # the first attempt timed out and was retried
        assert hd.requests[0]["body"]["summary"] == "Card blocked"
        card = await ws.st.card(number)
        assert (card["ticket_id"], card["caller_email"]) == ("HD-1", "ivan@example.com")

        live = book.find(uniqueid=call.uniqueid, linkedid=call.linkedid)
        assert live is not None
        await ws.st.app.ami.send({"Action": "Hangup", "Channel": live.channel})
        countdown = "document.getElementById('countdown').textContent"
        text = await page.wait_js(f"{countdown}.startsWith('complete the card within')")
        assert text is True
        await page.js(js_set({"resolution": "Unblocked"}))
        await page.wait_js(f"{countdown} === 'card completed'")
        card = await ws.st.card(number)
        assert card["completed_at"] >= card["ended_at"]

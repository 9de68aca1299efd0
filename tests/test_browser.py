"""The operator page and the wallboard in a real headless Chromium (DevTools protocol over
aiohttp's WebSocket client): the page loads, a call routed by the simulator pops within a
second, and submitting the form updates the card. Skips only when Chromium is not installed
(`.ci/run` installs Debian's `chromium`)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ccrouter.routing.state import OperatorService, OperatorStore
from ccrouter.sim import SimCaller
from tests.stack import add_operator, wait_until
from tests.web_stack import web_stack

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                "(apt-get install -y chromium)")


class Page:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws, self._ids = ws, itertools.count(1)

    async def send(self, method: str, **params: Any) -> Any:
        msg_id = next(self._ids)
        await self._ws.send_json({"id": msg_id, "method": method, "params": params})
        async for msg in self._ws:
            data = json.loads(msg.data)
            if data.get("id") == msg_id:
                if "error" in data:
                    raise AssertionError(f"{method}: {data['error']}")
                return data.get("result", {})
        raise AssertionError("DevTools connection closed")

    async def js(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                                 awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_js(self, expression: str, timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:  # the page may still be loading: a failing expression counts as false
            value = await self.js(f"(() => {{ try {{ return {expression}; }} "
                                  "catch (e) { return false; } })()")
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {expression}")
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def chromium(tmp_path: Path, client: aiohttp.ClientSession) -> AsyncIterator[Page]:
    assert CHROMIUM is not None
    profile = tmp_path / "chromium"
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--remote-debugging-port=0",
        "about:blank", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        await wait_until(lambda: port_file.exists() and port_file.read_text().count("\n") >= 1,
                         timeout=20, what="Chromium's DevTools port")
        port = int(port_file.read_text().split()[0])
        async with client.get(f"http://127.0.0.1:{port}/json/list") as r:
            targets = await r.json()
        url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        async with client.ws_connect(url, max_msg_size=0) as ws:
            yield Page(ws)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def test_operator_page_pops_the_call_and_saves_the_form(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as ws, chromium(tmp_path, ws.client) as page:
        add_operator(ws.st.sim, "wallet-ru", "PJSIP/1001", "Dilnoza Karimova",
                     answer_after_s=2, talk_time_s=200)
        await page.send("Page.navigate", url=f"{ws.base}/operator#token={ws.tokens['op1']}")
        await page.wait_js("document.getElementById('who').textContent.includes('op1001')")
        await page.wait_js("document.getElementById('conn').textContent === 'live'")
        assert await page.js("document.getElementById('current').hidden") is True
        assert "token" not in await page.js("location.href")  # not left in the address bar

        call = ws.st.sim.place_call(SimCaller("79001234567", "Ivan", dialled="712000100"))
        book = ws.st.app.tracker.book
        await wait_until(lambda: any(v.ringing for v in book.views()), what="routed, ringing")
        number = call.variables["CCROUTER_CARD"]
        # the call is routed to this operator: the page shows it within a second
        await page.wait_js(f"document.getElementById('card-number').textContent === '{number}'",
                           timeout=1.0)
        assert await page.js("document.getElementById('queue').textContent") == "wallet-ru"
        # the card is the operator's once they answer (a ringing call may still go elsewhere)
        await wait_until(lambda: any(v.answered for v in book.views()), what="answered")

        await page.js("""(() => {
            document.getElementById('topic').value = 'Wallet top-up';
            document.getElementById('resolution').value = 'Explained fees';
            document.getElementById('save').click(); })()""")
        await page.wait_js("document.getElementById('status').textContent === 'saved'")
        card = await ws.st.card(number)
        assert (card["topic"], card["resolution"]) == ("Wallet top-up", "Explained fees")

        await page.js("document.getElementById('logout').click()")
        await page.wait_js("document.getElementById('my-state').textContent === 'logged out'")
        service = OperatorService(ws.st.settings, OperatorStore(ws.st.app.engine))
        assert (await service.state("op1001")).logged_in is False


async def test_wallboard_page_shows_queues_and_live_calls(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as ws, chromium(tmp_path, ws.client) as page:
        await page.send("Page.navigate", url=f"{ws.base}/wallboard#token={ws.tokens['sup']}")
        await page.wait_js("!!document.querySelector('tr[data-queue=\"terminal-ru\"]')")
        call = ws.st.sim.place_call(SimCaller("79001112233", dialled="712000200",
                                              patience_s=600))
        await wait_until(lambda: "CCROUTER_CARD" in call.variables, what="routed")
        number = call.variables["CCROUTER_CARD"]
        await page.wait_js(f"!!document.querySelector('tr[data-card=\"{number}\"]')", 2.0)
        waiting = await page.wait_js(
            "document.querySelector('tr[data-queue=\"terminal-ru\"] td[data-field=waiting]')"
            ".textContent === '1'")
        assert waiting is True

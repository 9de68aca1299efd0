"""`ccrouter demo` as a newcomer runs it: a real subprocess (the simulator and the daemon over
real sockets), its printed URLs and tokens used while it runs, its final table and HTML report
checked against the card rows its database holds (read with sqlite3, not ccrouter's SQL)."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from tests.test_browser import CHROMIUM, chromium

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config" / "ccrouter.yaml"
QUEUE_OUTCOMES = ("answered", "abandoned", "short_abandon", "overflow")


@dataclass
class Demo:
    proc: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return self.urls["wallboard"].split("/wallboard")[0]

    def token(self, kind: str) -> str:
        return self.urls[kind].split("#token=")[1] if kind != "admin" else self.urls[kind]

    async def read_until(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while True:
            for line in self.lines:
                if m := re.search(pattern, line):
                    return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line matching {pattern!r} in {self.lines}")
            raw = await asyncio.wait_for(self.proc.stdout.readline(), left)
            if not raw:
                raise AssertionError(f"demo ended before {pattern!r}: {self.lines}")
            self.lines.append(raw.decode())

    async def finish(self, timeout: float = 60) -> str:
        assert self.proc.stdout is not None
        rest = await asyncio.wait_for(self.proc.stdout.read(), timeout)
        self.lines.append(rest.decode())
        assert await self.proc.wait() == 0, "".join(self.lines)
        return "".join(self.lines)


@asynccontextmanager
async def demo(data: Path, *args: str) -> AsyncIterator[Demo]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ccrouter", "demo", "--config", str(CONFIG), "--data", str(data),
        "--http-port", "0", *args, stdout=asyncio.subprocess.PIPE, env=env, cwd=ROOT)
    d = Demo(proc)
    try:
        for kind in ("wallboard", "operator page"):
            d.urls[kind] = (await d.read_until(rf"^{kind}:\s+(\S+)")).group(1)
        d.urls["admin"] = (await d.read_until(r"^admin token:\s+(\S+)")).group(1)
        yield d
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


def card_rows(db: Path, sl_s: int) -> dict[str, tuple[int, ...]]:
    """Per queue: (offered, answered, abandoned, short abandons, answered within 20 s, offered
    less short abandons) counted in the rows (a transfer card is the rest of a call counted on
    its first card)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT queue, count(*), sum(outcome = 'answered'), sum(outcome = 'abandoned'),"
            " sum(outcome = 'short_abandon'),"
            " sum(outcome = 'answered' AND coalesce(wait_s, 0) <= ?),"
            " count(*) - sum(outcome = 'short_abandon')"
            " FROM cards WHERE outcome IN (?, ?, ?, ?) AND coalesce(kind, '') != 'transfer'"
            " GROUP BY queue",
            (sl_s, *QUEUE_OUTCOMES)).fetchall()
    return {q: tuple(v) for q, *v in rows}


def final_table(output: str) -> dict[str, tuple[int, ...]]:
    """Per queue: the table's offered, answered, abandoned, short, and SL's x and y."""
    block = output.split("== ccrouter demo: per queue ==")[1].split("== cards of this run ==")[0]
    out = {}
    for line in block.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[1].isdigit():
            x, y = parts[5].split("/")
            out[parts[0]] = (*(int(p) for p in parts[1:5]), int(x), int(y))
    return out


def html_table(html: str) -> dict[str, tuple[int, int, int]]:
    return {q: (int(o), int(a), int(ab)) for q, o, a, ab in re.findall(
        r'<tr class="[a-z]*" data-queue="([^"]+)" data-offered="(\d+)" data-answered="(\d+)"'
        r' data-abandoned="(\d+)"', html)}


@pytest.mark.timeout(120)
async def test_demo_prints_working_urls_and_its_numbers_agree_with_the_cards(
        tmp_path: Path) -> None:
    async with demo(tmp_path, "--duration", "10") as d, aiohttp.ClientSession() as http:
        sup = {"Authorization": f"Bearer {d.token('wallboard')}"}
        async with http.get(f"{d.base}/api/v1/live/queues", headers=sup) as r:
            assert r.status == 200, await r.text()
            queues = await r.json()
        assert "wallet-ru" in str(queues)
        async with http.get(f"{d.base}/api/v1/me",
                            headers={"Authorization": f"Bearer {d.token('operator page')}"}) as r:
            assert r.status == 200
            assert (await r.json())["operator"] == "op1001"
        async with http.get(f"{d.base}/api/v1/live/queues",
                            headers={"Authorization": "Bearer ccr_not-a-token"}) as r:
            assert r.status == 401
        async with http.get(d.urls["wallboard"].split("#")[0]) as r:
            assert r.status == 200 and "<html" in (await r.text()).lower()
        async with http.post(f"{d.base}/api/v1/admin/reload",
                             headers={"Authorization": f"Bearer {d.token('admin')}"}) as r:
            assert r.status == 200, await r.text()
            assert "restart_required" in await r.json()
        spied = await listen_in(http, d.base, sup)
        await d.read_until(r"^\[\d\d:\d\d\] calls \d+")  # the plain status line (not a TTY)
        output = await d.finish()
    db = tmp_path / "ccrouter-demo.db"
    threshold = re.search(r"^SL threshold (\d+)s$", output, re.M)
    assert threshold, output
    sl_s = int(threshold.group(1))
    rows = card_rows(db, sl_s)
    assert sum(n for n, *_ in rows.values()) > 5, output  # the day had calls
    total = tuple(map(sum, zip(*rows.values(), strict=True)))
    assert final_table(output) == {**rows, "total": total}
    html = (tmp_path / "ccrouter-demo-report.html").read_text()
    assert html_table(html) == {q: v[:3] for q, v in final_table(output).items()}
    hourly = [float(v) for v in re.findall(r'class="bar" data-label="\d\d" data-value="([\d.]+)"',
                                           html)]
    assert sum(hourly) == sum(n for n, *_ in rows.values())
    assert "<script" not in html
    with sqlite3.connect(db) as conn:
        cards = conn.execute("SELECT count(*) FROM cards").fetchone()[0]
    assert re.search(rf"^\s+cards: {cards}$", output, re.M), output
    log = (tmp_path / "ccrouter-demo.log").read_text()
    assert "ccrouter_started" in log and "ccrouter_started" not in output
    check_recordings(db)
    with sqlite3.connect(db) as conn:
        spies = conn.execute("SELECT who, mode, state FROM qc_spy WHERE card = ?",
                             (spied,)).fetchall()
    assert spies and spies[0][:2] == ("demo wallboard", "listen"), spies
    assert spies[0][2] in ("listening", "done"), spies


def check_recordings(db: Path) -> None:
    """Every answered card has a real WAV recording of the size on its row; others none."""
    with sqlite3.connect(db) as conn:
        recs = conn.execute("SELECT c.outcome, r.state, r.path, r.size FROM cards c LEFT JOIN "
                            "recordings r ON r.card = c.number").fetchall()
    answered = [(path, size) for outcome, state, path, size in recs if outcome == "answered"]
    assert answered and all(p and size and Path(p).stat().st_size == size for p, size in answered)
    assert all(Path(p).read_bytes()[:4] == b"RIFF" for p, _ in answered)
    assert all(state in (None, "none") for outcome, state, _, _ in recs if outcome != "answered")


async def listen_in(http: aiohttp.ClientSession, base: str, sup: dict[str, str]) -> str:
    """The wallboard's supervisor listens in on a live answered call; its card number."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        async with http.get(f"{base}/api/v1/live/calls", headers=sup) as r:
            calls = [c for c in await r.json() if c["answered"]]
        for c in calls:
            async with http.post(f"{base}/api/v1/calls/{c['card']}/spy", headers=sup,
                                 json={"mode": "listen"}) as r:
                if r.status == 200:
                    return str(c["card"])
        await asyncio.sleep(0.1)
    raise AssertionError("no live answered call to listen in on")


def numbers(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {n for (n,) in conn.execute("SELECT number FROM cards")}


def mark(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('left-by-the-test', 'yes')")


def marked(db: Path) -> bool:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT 1 FROM meta WHERE key = 'left-by-the-test'").fetchone() \
            is not None


@pytest.mark.timeout(120)
async def test_each_run_starts_with_a_fresh_database_unless_keep(tmp_path: Path) -> None:
    db = tmp_path / "ccrouter-demo.db"
    async with demo(tmp_path, "--duration", "3", "--no-day") as d:
        await d.finish()
    first = numbers(db)
    assert first
    mark(db)
    async with demo(tmp_path, "--duration", "3", "--no-day") as d:
        await d.finish()
    second = numbers(db)
    assert not marked(db)  # a new file: nothing of the last run is left
    assert second and min(second) == min(first)  # card numbers start again
    mark(db)
    async with demo(tmp_path, "--duration", "3", "--no-day", "--keep") as d:
        await d.finish()
    assert marked(db)
    kept = numbers(db)
    assert second < kept  # the kept cards, and the new ones numbered after them


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                    "(apt-get install -y chromium)")
@pytest.mark.timeout(120)
async def test_wallboard_moves_during_the_demo(tmp_path: Path) -> None:
    async with demo(tmp_path, "--duration", "15") as d, aiohttp.ClientSession() as http, \
            chromium(tmp_path, http) as page:
        await page.send("Page.navigate", url=d.urls["wallboard"])
        await page.wait_js("!!document.querySelector('tr[data-queue=\"wallet-ru\"]')", 10)
        seen = set()
        for _ in range(20):
            seen.add(await page.js(
                "[...document.querySelectorAll('tr[data-queue] td, span[data-operator]')]"
                ".map(e => e.textContent).join('|')"))
            await asyncio.sleep(0.5)
        shot = await page.send("Page.captureScreenshot", format="png")
        png = base64.b64decode(shot["data"])
        (tmp_path / "wallboard.png").write_bytes(png)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(seen) >= 3, seen  # queues and operators moved while we watched
        await d.finish()

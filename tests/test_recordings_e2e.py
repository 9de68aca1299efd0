"""Recordings end to end: the simulator records answered calls as the generated dialplan
would (MixMonitor events as recorded, a real WAV file), ccrouter links the file to the card,
and the card's recording plays over real HTTP with range requests, per role, audited."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import ami_shape  # type: ignore[import-not-found]
import pytest

from ccrouter.asterisk_conf import extensions_conf
from ccrouter.config import Settings
from ccrouter.demo.session import sim_recording
from ccrouter.recordings.feature import install as recordings
from ccrouter.sim import SimCaller
from ccrouter.web.auth import Role
from ccrouter.web.feature import WebFeature
from tests.conftest import fixture_bytes
from tests.stack import EXAMPLE, add_operator, stack, wait_until
from tests.web_stack import WebStack, web_settings

WALLET_DID = "712000100"
ASTERISK_DIR = "/var/spool/asterisk/monitor/ccrouter"


def rec_settings(tmp_path: Path, **rec: object) -> Settings:
    s = web_settings()
    update = {"enabled": True, "directory": ASTERISK_DIR, "read_directory": str(tmp_path / "rec"),
              "keep_days": 30, **rec}  # fmt: skip
    return s.model_copy(update={"recordings": s.recordings.model_copy(update=update)})


@contextlib.asynccontextmanager
async def rec_stack(tmp_path: Path, settings: Settings) -> AsyncIterator[WebStack]:
    web = WebFeature(config_path=EXAMPLE)
    async with (
        stack(tmp_path, settings=settings, features=[recordings, web],
              recording=sim_recording(settings)) as st,
        aiohttp.ClientSession() as client,
    ):  # fmt: skip
        ws = WebStack(st, web, client)
        await ws.add_token("op1", Role.OPERATOR, "op1001")
        await ws.add_token("op2", Role.OPERATOR, "op1002")
        await ws.add_token("sup", Role.SUPERVISOR)
        yield ws


async def call(ws: WebStack, *, patience_s: float = 60.0) -> tuple[str, str]:
    sim = ws.st.sim
    if not any(m.interface == "PJSIP/1001" for m in sim.members("wallet-ru")):
        add_operator(sim, "wallet-ru", "PJSIP/1001", "Dilnoza Karimova", answer_after_s=1,
                     talk_time_s=2)
    c = sim.place_call(SimCaller("79001234567", "Ivan", dialled=WALLET_DID,
                                 patience_s=patience_s))  # fmt: skip
    outcome = await asyncio.wait_for(c.finished, 10)
    book = ws.st.app.tracker.book
    await wait_until(lambda: len(book) == 0, what="card closed")
    await ws.st.app.writer.flush()
    return str(c.variables["CCROUTER_CARD"]), outcome


async def recording_row(ws: WebStack, card: str) -> dict[str, object]:
    async def ended() -> dict[str, object]:
        while True:
            status, info = await ws.call("GET", f"/api/v1/cards/{card}/recording/info", "sup")
            if status == 200 and info["ended_at"] is not None:
                return dict(info)
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(ended(), 5)


def test_generated_dialplan_records_by_card_number(tmp_path: Path) -> None:
    text = extensions_conf(rec_settings(tmp_path, announcement="ccrouter/recorded"))
    assert " same => n,Gosub(ccrouter-record,s,1)" in text
    assert (f" same => n,MixMonitor({ASTERISK_DIR}/ccrouter-${{FILTER(0-9,${{CCROUTER_CARD}})}}"
            ".wav,b)") in text
    assert ' same => n,ExecIf($["${MIXMONITOR_FILENAME}" = ""]?Playback(ccrouter/recorded))' in text
    some = extensions_conf(rec_settings(tmp_path, targets=["wallet-uz"], products=["terminal"],
                                        format="wav49"))  # fmt: skip
    assert ('GosubIf($[${REGEX("^(wallet-uz)$" ${CCROUTER_QUEUE})} | '
            '${REGEX("^(terminal)$" ${CCROUTER_PRODUCT})}]?ccrouter-record,s,1)') in some
    assert ".WAV,b)" in some
    assert "MixMonitor" not in extensions_conf(web_settings())


async def test_answered_call_is_recorded_linked_and_plays_with_ranges(tmp_path: Path) -> None:
    async with rec_stack(tmp_path, rec_settings(tmp_path)) as ws:
        card, outcome = await call(ws)
        assert outcome == "answered"
        info = await recording_row(ws, card)
        wav = tmp_path / "rec" / f"ccrouter-{card}.wav"
        assert info["path"] == f"{ASTERISK_DIR}/ccrouter-{card}.wav"
        assert (info["state"], info["size"]) == ("done", wav.stat().st_size)
        assert wav.read_bytes()[:4] == b"RIFF"
        card_row = await ws.st.card(card)
        assert card_row["recording"] == info["path"]
        # the simulator's MixMonitor events have every header of the recorded ones
        ref = ami_shape.shape(fixture_bytes("ami-mixmonitor-call.txt"))
        got = ami_shape.shape(ws.st.sim.sent_bytes(0))
        assert ami_shape.compare(ref, got, {"MixMonitorStart"}) == []
        assert "variable" in got["VarSet"] and "value" in got["VarSet"]

        url = f"{ws.base}/api/v1/cards/{card}/recording"
        whole = wav.read_bytes()
        async with ws.client.get(url, headers=ws.headers("op1")) as r:
            assert r.status == 200 and r.headers["Content-Type"] == "audio/wav"
            assert r.headers["Accept-Ranges"] == "bytes"
            assert await r.read() == whole
        async with ws.client.get(url, headers={**ws.headers("sup"), "Range": "bytes=44-99"}) as r:
            assert r.status == 206
            assert r.headers["Content-Range"] == f"bytes 44-99/{len(whole)}"
            assert await r.read() == whole[44:100]
        bad = {**ws.headers("sup"), "Range": f"bytes={len(whole) + 10}-"}
        async with ws.client.get(url, headers=bad) as r:
            assert r.status == 416
        status, body = await ws.call("GET", f"/api/v1/cards/{card}/recording", "op2")
        assert status == 403 and "their own calls" in body["message"]
        info = await recording_row(ws, card)
        plays = [(p["who"], p["role"], p["result"], p["range"]) for p in info["plays"]]
        too_far = f"bytes={len(whole) + 10}-"
        assert plays == [("op1", "operator", "played", ""),
                         ("sup", "supervisor", "played", "bytes=44-99"),
                         ("sup", "supervisor", "played", too_far),
                         ("op2", "operator", "refused", "")]

        wav.unlink()  # gone from disk: a 404 with the reason, on the card too
        status, body = await ws.call("GET", f"/api/v1/cards/{card}/recording", "sup")
        assert status == 404 and "not on disk" in body["message"]
        info = await recording_row(ws, card)
        assert info["state"] == "missing" and "not on disk" in str(info["reason"])


async def test_abandoned_call_has_no_recording_file(tmp_path: Path) -> None:
    async with rec_stack(tmp_path, rec_settings(tmp_path)) as ws:
        sim = ws.st.sim
        c = sim.place_call(SimCaller("79001234568", "Olga", dialled=WALLET_DID, patience_s=0.5))
        assert await asyncio.wait_for(c.finished, 10) == "abandoned"
        await wait_until(lambda: len(ws.st.app.tracker.book) == 0, what="card closed")
        card = str(c.variables["CCROUTER_CARD"])
        info = await recording_row(ws, card)
        assert (info["state"], info["size"]) == ("none", None)
        status, body = await ws.call("GET", f"/api/v1/cards/{card}/recording", "sup")
        assert status == 404 and "not answered" in body["message"]


@pytest.mark.parametrize("hear", ["all", "none"])
async def test_operators_hear_is_configurable(tmp_path: Path, hear: str) -> None:
    async with rec_stack(tmp_path, rec_settings(tmp_path, operators_hear=hear)) as ws:
        card, _ = await call(ws)
        await recording_row(ws, card)
        async with ws.client.get(f"{ws.base}/api/v1/cards/{card}/recording",
                                 headers=ws.headers("op2")) as r:
            assert r.status == (200 if hear == "all" else 403)

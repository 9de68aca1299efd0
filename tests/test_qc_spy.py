"""Live listening end to end: a supervisor asks over real HTTP to listen to / whisper to /
barge in on a live call; ccrouter originates ChanSpy on the supervisor's phone in the
simulator, which answers with the recorded event shapes; the card records who, how, how long.
Operators never may; every refusal says why."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import ami_shape  # type: ignore[import-not-found]
import pytest

from ccrouter.config import Settings
from ccrouter.pbx import events as ev
from ccrouter.pbx.ami.translate import translate
from ccrouter.qc.feature import install as qc
from ccrouter.qc.model import chanspy_data, may_spy
from ccrouter.sim import SimCall, SimCaller, SimPhone
from ccrouter.web.auth import Role
from tests.conftest import fixture_bytes
from tests.stack import add_operator, wait_until
from tests.web_stack import WebStack, web_settings, web_stack

WALLET_DID = "712000100"


def spy_settings(**spy: Any) -> Settings:
    s = web_settings()
    devices = {"sup": "PJSIP/100", "admin": "Local/200@phones"}
    qc_s = s.qc.model_copy(update={"spy": s.qc.spy.model_copy(update={"devices": devices,
                                                                      **spy})})
    return s.model_copy(update={"qc": qc_s})


@contextlib.asynccontextmanager
async def spy_stack(tmp_path: Path, **phone: Any) -> AsyncIterator[WebStack]:
    async with web_stack(tmp_path, spy_settings(), features=[qc]) as ws:
        ws.st.sim.add_phone(SimPhone("PJSIP/100", **phone))
        ws.st.sim.add_phone(SimPhone("Local/200@phones"))
        await ws.add_token("sup2", Role.SUPERVISOR)  # no device configured
        add_operator(ws.st.sim, "wallet-ru", "PJSIP/1001", "Dilnoza Karimova",
                     answer_after_s=1, talk_time_s=40)
        yield ws


async def answered_call(ws: WebStack) -> tuple[SimCall, str]:
    c = ws.st.sim.place_call(SimCaller("79001234567", "Ivan", dialled=WALLET_DID))
    book = ws.st.app.tracker.book
    await wait_until(lambda: any(v.answered for v in book.views()), what="answered")
    return c, str(c.variables["CCROUTER_CARD"])


async def sessions(ws: WebStack, card: str, state: str) -> list[dict[str, Any]]:
    async def settled() -> list[dict[str, Any]]:
        while True:
            await ws.st.app.qc.drained()
            status, rows = await ws.call("GET", f"/api/v1/cards/{card}/spy", "sup")
            assert status == 200, rows
            if rows and all(r["state"] == state for r in rows):
                return list(rows)
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(settled(), 10)


def test_chanspy_data_options_from_app_chanspy() -> None:
    chan = "PJSIP/1001-0000000a"
    assert chanspy_data(chan, "listen") == "PJSIP/1001-0000000a,qEu"
    assert chanspy_data(chan, "whisper") == "PJSIP/1001-0000000a,qwEu"
    assert chanspy_data(chan, "barge") == "PJSIP/1001-0000000a,qBEu"
    with pytest.raises(ValueError, match="mode"):
        chanspy_data(chan, "shout")
    with pytest.raises(ValueError, match="cannot be named"):
        chanspy_data("Local/a,b@x-1;1", "listen")


@pytest.mark.parametrize(("role", "allowed"), [("operator", False), ("supervisor", True),
                                               ("admin", True)])  # fmt: skip
def test_may_spy_is_the_one_decision(role: str, allowed: bool) -> None:
    class Who:
        def __init__(self) -> None:
            self.role, self.name = role, "x"

    assert (may_spy(Who(), "op1001") is None) is allowed


def test_translates_the_recorded_chanspy_events() -> None:
    raw = fixture_bytes("ami-chanspy.txt").decode().split("\r\n\r\n")
    blocks = [dict(line.split(": ", 1) for line in b.split("\r\n") if ": " in line)
              for b in raw if b.startswith("Event: ChanSpy")]
    start, stop = (translate(b, 1.0) for b in blocks)
    assert start == ev.SpyStarted(1.0, "1796220406.30", "Local/spy1@fixture-rec-0000000f;1",
                                  "1796220405.28", "Local/op1@acc-agents-0000000e;1",
                                  "1796220405.26")
    assert isinstance(stop, ev.SpyStopped) and stop.spyer_uniqueid == "1796220406.30"


async def test_supervisor_whispers_on_a_live_call_and_the_card_records_it(tmp_path: Path) -> None:
    async with spy_stack(tmp_path) as ws:
        c, card = await answered_call(ws)
        status, body = await ws.call("POST", f"/api/v1/calls/{card}/spy", "sup",
                                     json={"mode": "whisper"})
        assert status == 200, body
        assert (body["who"], body["mode"], body["device"], body["state"]) == (
            "sup", "whisper", "PJSIP/100", "ringing")
        req = ws.st.sim.originated[-1]
        assert (req.channel, req.app) == ("PJSIP/100", "ChanSpy")
        assert req.data.startswith("PJSIP/1001-") and req.data.endswith(",qwEu")
        assert req.cid_num == card and "whisper" in req.cid_name
        assert body["spyee"] == req.data.split(",")[0]
        listening = await sessions(ws, card, "listening")
        assert listening[0]["started_at"] is not None and listening[0]["ended_at"] is None
        status, again = await ws.call("POST", f"/api/v1/calls/{card}/spy", "sup", json={})
        assert status == 409 and "already listening" in again["message"]
        assert await asyncio.wait_for(c.finished, 10) == "answered"
        done = await sessions(ws, card, "done")
        assert done[0]["duration_s"] > 0 and done[0]["reason"] == ""
        # the simulator's ChanSpy events carry every header of the recorded ones
        ref = ami_shape.shape(fixture_bytes("ami-chanspy.txt"))
        got = ami_shape.shape(ws.st.sim.sent_bytes(0))
        assert ami_shape.compare(ref, got, {"ChanSpyStart", "ChanSpyStop"}) == []


@pytest.mark.parametrize("mode", ["listen", "barge"])
async def test_admin_listens_or_barges_from_a_local_phone(tmp_path: Path, mode: str) -> None:
    async with spy_stack(tmp_path) as ws:
        _, card = await answered_call(ws)
        status, body = await ws.call("POST", f"/api/v1/calls/{card}/spy", "admin",
                                     json={"mode": mode})
        assert status == 200, body
        letter = {"listen": "", "barge": "B"}[mode]
        assert ws.st.sim.originated[-1].data.endswith(f",q{letter}Eu")
        rows = await sessions(ws, card, "listening")
        assert (rows[0]["who"], rows[0]["role"], rows[0]["mode"]) == ("admin", "admin", mode)


async def test_refusals_say_why(tmp_path: Path) -> None:
    async with spy_stack(tmp_path) as ws:
        status, body = await ws.call("POST", "/api/v1/calls/123/spy", "sup", json={})
        assert status == 404 and "not a call in progress" in body["message"]
        _, card = await answered_call(ws)
        for who in ("op1", "op2"):  # operators never, not even on their own call
            status, body = await ws.call("POST", f"/api/v1/calls/{card}/spy", who, json={})
            assert status == 403 and "role operator may not POST" in body["message"]
        status, body = await ws.call("POST", f"/api/v1/calls/{card}/spy", "sup2", json={})
        assert status == 409 and "qc.spy.devices" in body["message"]
        status, body = await ws.call("POST", f"/api/v1/calls/{card}/spy", "sup",
                                     json={"mode": "shout"})
        assert status == 400 and body["field"] == "mode"
        status, body = await ws.call("GET", f"/api/v1/cards/{card}/spy", "op1")
        assert status == 403
        assert not any(r.app == "ChanSpy" for r in ws.st.sim.originated)


async def test_phone_that_does_not_answer_fails_the_session(tmp_path: Path) -> None:
    async with spy_stack(tmp_path, no_answer=True) as ws:
        _, card = await answered_call(ws)
        s = ws.st.settings
        assert s.qc.spy.ring_timeout_s == 30
        status, _ = await ws.call("POST", f"/api/v1/calls/{card}/spy", "sup", json={})
        assert status == 200
        rows = await sessions(ws, card, "failed")
        assert "did not answer" in rows[0]["reason"] and rows[0]["started_at"] is None


async def test_supervisor_hangs_up_first(tmp_path: Path) -> None:
    async with spy_stack(tmp_path, hangs_up_after_s=3) as ws:
        c, card = await answered_call(ws)
        status, _ = await ws.call("POST", f"/api/v1/calls/{card}/spy", "sup", json={})
        assert status == 200
        rows = await sessions(ws, card, "done")
        assert not c.finished.done()  # the call goes on without the supervisor
        assert rows[0]["duration_s"] > 0

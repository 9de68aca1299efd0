"""Callback legs are recorded under their own card: the customer-first leg goes through
ccrouter-queue (Gosub ccrouter-record), the operator-first leg starts MixMonitor on the
operator's channel before Dial(); each recording is linked from the leg's card, not the
abandoned original's. A channel already recorded under its card (queued again) gets no second
MixMonitor on the same file; one recorded under another card (a transferred caller, see
tests/test_transfers.py) stops that MixMonitor before starting its own."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ccrouter.asterisk_conf import extensions_conf
from ccrouter.callbacks.feature import install as callbacks
from ccrouter.config import Settings
from ccrouter.demo.session import sim_recording
from ccrouter.recordings.feature import install as recordings
from ccrouter.recordings.store import RecordingStore
from ccrouter.sim import SimCustomer
from tests.stack import Stack, stack, wait_until
from tests.test_callback_e2e import NUMBER, abandon, add_paused_operator, cb_settings, unpause

ASTERISK_DIR = "/var/spool/asterisk/monitor/ccrouter"


def settings(tmp_path: Path, **cb: Any) -> Settings:
    s = cb_settings(**cb)
    rec = s.recordings.model_copy(update={"enabled": True, "directory": ASTERISK_DIR,
                                          "read_directory": str(tmp_path / "rec")})
    return s.model_copy(update={"recordings": rec})


async def recording(st: Stack, card: str) -> dict[str, Any]:
    store = RecordingStore(st.app.engine)

    async def ended() -> dict[str, Any]:
        while True:
            row = await store.get(card)
            if row is not None and row["ended_at"] is not None:
                return dict(row)
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(ended(), 5)


async def callback_leg(st: Stack, tmp_path: Path) -> tuple[dict[str, Any], Path]:
    """The answered callback leg's card and its recording file's path on disk."""
    await wait_until(lambda: len(st.app.tracker.book) == 0, what="cards closed")
    cards = await st.cards()
    (leg,) = [c for c in cards if c["kind"] == "callback"]
    assert leg["outcome"] == "answered"
    return leg, tmp_path / "rec" / f"ccrouter-{leg['number']}.wav"


async def test_customer_first_leg_is_recorded_on_its_own_card(tmp_path: Path) -> None:
    s = settings(tmp_path)
    async with stack(tmp_path, settings=s, features=[callbacks, recordings],
                     recording=sim_recording(s)) as st:
        add_paused_operator(st, "wallet-ru", "PJSIP/1001", "Dilnoza", answer_after_s=1,
                            talk_time_s=3)  # fmt: skip
        st.sim.add_customer(SimCustomer(NUMBER, answer_after_s=1))
        original = await abandon(st)
        await unpause(st, "PJSIP/1001")
        await wait_until(lambda: len(st.sim.customer_calls) == 1, what="customer answered")
        assert await asyncio.wait_for(st.sim.customer_calls[0].finished, 10) == "answered"
        leg, wav = await callback_leg(st, tmp_path)
        assert leg["callback_of"] == original
        rec = await recording(st, leg["number"])
        first = await recording(st, original)
    assert rec["path"] == f"{ASTERISK_DIR}/ccrouter-{leg['number']}.wav"
    assert (rec["state"], rec["size"]) == ("done", wav.stat().st_size)
    assert leg["recording"] == rec["path"]
    assert (first["state"], first["size"]) == ("none", None)  # the abandoned call: no file


async def test_operator_first_leg_is_recorded_on_its_own_card(tmp_path: Path) -> None:
    s = settings(tmp_path, mode="operator_first", operator_ring_s=6, whisper="cb-whisper")
    text = extensions_conf(s)
    context = text[text.index("[ccrouter-callback-operator]"):].split("\n\n")[0]
    lines = context.splitlines()
    gosub = lines.index(" same => n,Gosub(ccrouter-record,s,1)")
    assert gosub < next(i for i, line in enumerate(lines) if ",Dial(" in line)
    record = text[text.index("[ccrouter-record]"):].split("\n\n")[0].splitlines()
    own = f"{ASTERISK_DIR}/ccrouter-${{FILTER(0-9,${{CCROUTER_CARD}})}}.wav"
    guard = record.index(f' same => n,ExecIf($["${{MIXMONITOR_FILENAME}}" = "{own}"]?Return())')
    stop = record.index(' same => n,ExecIf($["${MIXMONITOR_FILENAME}" != ""]?StopMixMonitor())')
    assert guard < stop < record.index(f" same => n,MixMonitor({own},b)")
    async with stack(tmp_path, settings=s, features=[callbacks, recordings],
                     recording=sim_recording(s)) as st:
        add_paused_operator(st, "wallet-ru", "PJSIP/1001", "Dilnoza", answer_after_s=1,
                            talk_time_s=4)  # fmt: skip
        st.sim.add_customer(SimCustomer(NUMBER, answer_after_s=2))
        await st.app.services["callbacks"].request(NUMBER, target="wallet-ru", language="ru",
                                       product="wallet", card=None)  # fmt: skip
        await unpause(st, "PJSIP/1001")
        await wait_until(lambda: len(st.sim.originated) == 1, what="operator rung")
        svc = st.app.services["callbacks"]
        await wait_until(lambda: svc.in_flight() == 0, timeout=10, what="done")
        leg, wav = await callback_leg(st, tmp_path)
        rec = await recording(st, leg["number"])
    assert (rec["state"], rec["size"]) == ("done", wav.stat().st_size)
    assert rec["uniqueid"] == st.sim.originated[0].channel_id  # the operator's channel
    assert leg["recording"] == rec["path"]

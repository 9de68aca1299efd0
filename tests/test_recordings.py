"""Recordings without the simulator: the pure model, the recorded MixMonitor stream replayed
through the translator and the service, the prune (function and CLI)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from ccrouter.config.recordings import RecordingSettings
from ccrouter.db.engine import make_engine
from ccrouter.db.migrate import migrate
from ccrouter.db.tables import recordings
from ccrouter.pbx import events as ev
from ccrouter.pbx.ami.replay import messages
from ccrouter.pbx.ami.translate import translate
from ccrouter.recordings import model as m
from ccrouter.recordings.prune import prune
from ccrouter.recordings.service import RecordingService
from ccrouter.recordings.store import RecordingStore
from tests.conftest import ROOT, fixture_bytes

ASTERISK_DIR = "/var/spool/asterisk/monitor"
FIXTURE_NAME = b"rec-test-1796220387.23.wav"
CARD = "1000017"


def test_file_name_is_the_card_number_and_nothing_else() -> None:
    assert m.file_name(CARD, "wav") == f"ccrouter-{CARD}.wav"
    assert m.file_name(CARD, "wav49") == f"ccrouter-{CARD}.WAV"
    assert m.file_name(CARD, "gsm") == f"ccrouter-{CARD}.gsm"
    for bad in ("", "12a", "1/../2", "1 2", "9" * 21):
        with pytest.raises(m.RecordingError, match="digits only"):
            m.file_name(bad, "wav")
    with pytest.raises(m.RecordingError, match="format 'mp3'"):
        m.file_name(CARD, "mp3")
    assert m.card_of(f"/x/ccrouter-{CARD}.WAV") == CARD
    assert m.card_of("/x/rec-test-1.wav") is None


def test_local_path_reads_only_ccrouter_files_right_in_the_directory() -> None:
    ok = m.local_path(f"{ASTERISK_DIR}/ccrouter-{CARD}.wav", ASTERISK_DIR, "/mnt/rec")
    assert ok == f"/mnt/rec/ccrouter-{CARD}.wav"
    assert m.local_path(f"{ASTERISK_DIR}/ccrouter-{CARD}.wav", ASTERISK_DIR + "/", None) == (
        f"{ASTERISK_DIR}/ccrouter-{CARD}.wav")
    for bad in (f"{ASTERISK_DIR}/../ccrouter-{CARD}.wav", f"/etc/ccrouter-{CARD}.wav",
                f"{ASTERISK_DIR}/sub/ccrouter-{CARD}.wav", f"{ASTERISK_DIR}/passwd"):
        assert m.local_path(bad, ASTERISK_DIR, "/mnt/rec") is None, bad
    assert m.content_type("/a/ccrouter-1.wav") == "audio/wav"
    assert m.content_type("/a/ccrouter-1.gsm") == "audio/x-gsm"


def test_who_may_play() -> None:
    me, other = m.Listener("operator", "PJSIP/1001"), m.Listener("operator", "PJSIP/1002")
    sup, blind = m.Listener("supervisor", None), m.Listener("operator", None)
    assert m.may_play(me, "PJSIP/1001", "own") is None
    assert "their own calls" in (m.may_play(other, "PJSIP/1001", "own") or "")
    assert m.may_play(blind, None, "own") is not None
    assert m.may_play(other, "PJSIP/1001", "all") is None
    assert "operators_hear: none" in (m.may_play(me, "PJSIP/1001", "none") or "")
    assert m.may_play(sup, "PJSIP/1001", "none") is None


def test_policy_and_prune_plan_per_line() -> None:
    everything = m.Policy(True)
    assert everything.records("wallet-ru", "wallet") and not m.Policy(False).records("a", "b")
    some = m.Policy(True, frozenset({"terminal-ru"}), frozenset({"wallet"}), 30, {"wallet": 7})
    assert some.records("wallet-uz", "wallet") and some.records("terminal-ru", "terminal")
    assert not some.records("billing-ru", "billing")
    now = 100 * m.DAY_S
    stored = [m.Stored("1", "/a", "wallet", now - 8 * m.DAY_S, 10),
              m.Stored("2", "/b", "wallet", now - 6 * m.DAY_S, 20),
              m.Stored("3", "/c", "terminal", now - 8 * m.DAY_S, 30),
              m.Stored("4", "/d", "terminal", now - 31 * m.DAY_S, 40)]
    plan = m.prune_plan(stored, some, now)
    assert [s.card for s in plan.delete] == ["4", "1"] and plan.bytes == 50


Engine = sa.ext.asyncio.AsyncEngine


async def _service(tmp_path: Path) -> tuple[RecordingService, RecordingStore, Engine]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'cards.db'}")
    await migrate(engine)
    store = RecordingStore(engine)
    settings = RecordingSettings(enabled=True, directory=ASTERISK_DIR,
                                 read_directory=str(tmp_path))
    return RecordingService(store, settings), store, engine


def _stream() -> bytes:
    """The recorded MixMonitor call, its file named as ccrouter names it (the lab used
    `rec-test-${UNIQUEID}.wav`; nothing else is changed)."""
    data = fixture_bytes("ami-mixmonitor-call.txt")
    assert data.count(FIXTURE_NAME) == 2  # AppData and MIXMONITOR_FILENAME
    return data.replace(FIXTURE_NAME, f"ccrouter-{CARD}.wav".encode())


async def _replay(service: RecordingService, data: bytes) -> list[ev.DomainEvent]:
    seen = []
    for i, msg in enumerate(messages(data)):
        if "Event" in msg and (e := translate(msg, 1000.0 + i)) is not None:
            seen.append(e)
            service.on_event(e)
    return seen


@pytest.mark.parametrize("file_written", [True, False])
async def test_recorded_mixmonitor_stream_fills_the_card(tmp_path: Path,
                                                         file_written: bool) -> None:
    service, store, engine = await _service(tmp_path)
    if file_written:  # as Asterisk wrote it: 44-byte header + 2 s of 8 kHz 16-bit mono
        (tmp_path / f"ccrouter-{CARD}.wav").write_bytes(b"\0" * 32044)
    task = asyncio.create_task(service.run())
    try:
        seen = await _replay(service, _stream())
        kinds = [type(e).__name__ for e in seen]
        assert kinds.count("RecordingNamed") == 1 and kinds.count("RecordingStarted") == 1
        assert kinds.index("RecordingNamed") + 1 == kinds.index("RecordingStarted")
        await asyncio.wait_for(service.drained(), 5)
        row = await store.get(CARD)
    finally:
        task.cancel()
        await engine.dispose()
    assert row is not None
    assert row["path"] == f"{ASTERISK_DIR}/ccrouter-{CARD}.wav"
    assert row["uniqueid"] == "1796220387.23"  # the ;2 half that ran MixMonitor
    assert row["started_at"] < row["ended_at"]  # ended by that channel's Hangup
    if file_written:
        assert (row["state"], row["size"], row["reason"]) == ("done", 32044, "")
    else:
        assert (row["state"], row["size"]) == ("none", None)
        assert "not answered" in row["reason"]


async def test_mixmonitor_start_without_a_file_name_is_ignored(tmp_path: Path) -> None:
    service, _, engine = await _service(tmp_path)
    data = b"\r\n\r\n".join(b for b in _stream().split(b"\r\n\r\n")
                            if b"MIXMONITOR_FILENAME" not in b)  # fmt: skip
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        await _replay(service, data)
    await engine.dispose()
    assert [x["event"] for x in logs if x["event"] == "recording_unnamed"] == ["recording_unnamed"]


async def _old_recordings(tmp_path: Path, engine: sa.ext.asyncio.AsyncEngine) -> None:
    now = time.time()
    async with engine.begin() as conn:
        for card, age_days in (("1000017", 40), ("1000025", 2)):
            (tmp_path / f"ccrouter-{card}.wav").write_bytes(b"\0" * 1044)
            await conn.execute(sa.insert(recordings).values(
                card=card, path=f"{ASTERISK_DIR}/ccrouter-{card}.wav", uniqueid="1.1",
                state="done", started_at=now - age_days * 86400, ended_at=now, size=1044))


async def test_prune_dry_run_then_for_real(tmp_path: Path) -> None:
    service, store, engine = await _service(tmp_path)
    s = service.settings.model_copy(update={"keep_days": 30})
    await _old_recordings(tmp_path, engine)
    try:
        dry = await prune(store, s, now=time.time(), dry_run=True)
        assert [x.card for x in dry.planned] == ["1000017"] and dry.deleted == 0
        assert (tmp_path / "ccrouter-1000017.wav").exists()
        real = await prune(store, s, now=time.time())
        assert [x.card for x in real.planned] == [x.card for x in dry.planned]  # they agree
        assert (real.deleted, real.freed) == (1, 1044)
        assert not (tmp_path / "ccrouter-1000017.wav").exists()
        assert (tmp_path / "ccrouter-1000025.wav").exists()
        row = await store.get("1000017")
        assert row is not None and row["state"] == "deleted" and "30 days" in row["reason"]
        again = await prune(store, s, now=time.time())
        assert again.planned == ()
    finally:
        await engine.dispose()


def test_prune_command(tmp_path: Path) -> None:
    db = tmp_path / "cards.db"
    config = tmp_path / "ccrouter.yaml"
    config.write_text((ROOT / "config" / "ccrouter.yaml").read_text() + (
        f"\nrecordings:\n  enabled: true\n  directory: {ASTERISK_DIR}\n"
        f"  read_directory: {tmp_path}\n  keep_days: 30\n"))

    async def setup() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{db}")
        await migrate(engine)
        await _old_recordings(tmp_path, engine)
        await engine.dispose()

    asyncio.run(setup())
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CCROUTER_DATABASE_URL": f"sqlite+aiosqlite:///{db}"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ccrouter", "recordings", "--config",
                               str(config), "prune", *args], env=env, capture_output=True,
                              text=True, timeout=60)  # fmt: skip

    dry = run("--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would delete card 1000017" in dry.stdout and "1000025" not in dry.stdout
    assert "1 recordings, 1044 bytes would be freed" in dry.stdout
    assert (tmp_path / "ccrouter-1000017.wav").exists()
    real = run()
    assert real.returncode == 0, real.stderr
    assert "1 recordings deleted, 1044 bytes freed" in real.stdout
    assert not (tmp_path / "ccrouter-1000017.wav").exists()


def test_config_names_unknown_lines_and_formats(tmp_path: Path) -> None:
    from ccrouter.config import ConfigInvalid, load_settings

    path = tmp_path / "ccrouter.yaml"
    path.write_text((ROOT / "config" / "ccrouter.yaml").read_text() + (
        "\nrecordings:\n  enabled: true\n  targets: [wallet-xx]\n  products: [walet]\n"
        "  format: mp3\n"))
    with pytest.raises(ConfigInvalid) as exc:
        load_settings(path, environ={})
    text = "\n".join(map(str, exc.value.errors))
    assert "recordings.targets[0]: unknown target 'wallet-xx'" in text
    assert "recordings.products[0]: unknown product 'walet'" in text
    assert "recordings.format: Input should be 'wav', 'gsm' or 'wav49'" in text

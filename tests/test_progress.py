"""The progress of `make bench`, `make fuzz` and `make soak` (bench/progress.py): the estimate
said at the start, lines with an ETA when not on a TTY (at most one per interval), a bar
redrawn in place on a TTY; and fuzz's pytest plugin prints a line per finished property
(issue 16, item 6). Times come from a fake clock: nothing here depends on the machine's speed."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

import bench.__main__ as bench_main
from bench.progress import Progress, announce, eta_s, fmt_duration
from fuzz.__main__ import estimate_s
from tests.conftest import ROOT


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TtyBuffer(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_durations_read_as_people_say_them() -> None:
    assert [fmt_duration(s) for s in (0, 44.6, 60, 200, 3599, 3600, 3900, 36_000)] == [
        "0 s", "45 s", "1 min 00 s", "3 min 20 s", "59 min 59 s", "1 h 00 min", "1 h 05 min",
        "10 h 00 min"]  # fmt: skip


def test_eta_is_the_pace_so_far_applied_to_what_is_left() -> None:
    assert eta_s(0, 10, 5.0) is None
    assert eta_s(2, 10, 5.0) == 20.0
    assert eta_s(10, 10, 5.0) == 0.0


def test_plain_output_is_a_line_per_interval_with_the_eta() -> None:
    out, clock = io.StringIO(), Clock()
    p = Progress("building cards.db", total=1_000_000, unit="cards", stream=out,
                 every_s=10, clock=clock)  # fmt: skip
    clock.now += 5
    p.update(250_000)  # the first update is shown
    clock.now += 3
    p.update(400_000)  # 3 s later: not yet
    clock.now += 7
    p.update(500_000)  # 10 s after the last line shown
    clock.now += 1
    p.update(600_000, force=True)
    clock.now += 4
    p.finish()
    assert out.getvalue().splitlines() == [
        "building cards.db: 250,000/1,000,000 cards (25 %), 5 s, ETA 15 s",
        "building cards.db: 500,000/1,000,000 cards (50 %), 15 s, ETA 15 s",
        "building cards.db: 600,000/1,000,000 cards (60 %), 16 s, ETA 11 s",
        "building cards.db: 1,000,000/1,000,000 cards (100 %), 20 s",
    ]
    assert "\r" not in out.getvalue()


def test_on_a_tty_a_bar_is_redrawn_in_place() -> None:
    out, clock = TtyBuffer(), Clock()
    p = Progress("fuzz", total=4, unit="properties", stream=out, clock=clock)
    assert p.tty
    clock.now += 30
    p.step()
    clock.now += 30
    p.step()  # a TTY shows every update
    p.finish()
    text = out.getvalue()
    draws = text.split("\r")[1:]
    assert len(draws) == 3 and text.endswith("\n") and text.count("\n") == 1
    assert draws[0].startswith("[#######.....................] fuzz: 1/4 properties (25 %), 30 s,"
                               " ETA 1 min 30 s")  # fmt: skip
    assert draws[2].startswith("[" + "#" * 28 + "] fuzz: 4/4 properties (100 %), 1 min 00 s")


def test_a_total_of_zero_is_refused_naming_the_work() -> None:
    with pytest.raises(ValueError, match="building x: the total must be > 0, got 0"):
        Progress("building x", total=0)


def test_the_start_line_says_how_long() -> None:
    out = io.StringIO()
    announce("fuzz", 1800, "on 2 cores", stream=out)
    announce("bench", None, "no earlier run of these sections to go by", stream=out)
    announce("x", None, stream=out)
    assert out.getvalue().splitlines() == [
        "fuzz: about 30 min 00 s; on 2 cores",
        "bench: no earlier run of these sections to go by",
        "x: duration unknown",
    ]


def test_bench_estimates_from_the_last_run_of_the_same_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench_main, "RESULTS", tmp_path)
    monkeypatch.setattr(bench_main, "store_cache", lambda: tmp_path)
    bench_main.print_estimate(list(bench_main.SECTIONS), quick=False)
    assert capsys.readouterr().out == (
        "bench: about 6 min 30 s; on this project's 2-core machines; plus a one-time build of "
        "the 10 M-card table into bench/cache/ (progress below); section pg loads 10 M cards "
        "into its own PostgreSQL every run (1.5-2 min of it)\n")  # fmt: skip
    (tmp_path / "cards-10000000.db").touch()
    (tmp_path / "latest.json").write_text(json.dumps({
        "quick": False, "machine": {}, "agi": {"seconds": 40.0}, "store": {"seconds": 65.0}}))
    bench_main.print_estimate(["agi", "store"], quick=False)
    bench_main.print_estimate(["agi", "store"], quick=True)
    assert capsys.readouterr().out.splitlines() == [
        "bench: about 1 min 45 s; as the last run here",
        "bench: no earlier run of these sections to go by",
    ]
    store = bench_main.section_estimate("store", quick=False)
    assert store == " (about 1 min 05 s, as the last run)"
    assert bench_main.section_estimate("ami", quick=False) == ""


def test_fuzz_says_its_length_and_a_line_per_property(tmp_path: Path) -> None:
    assert estimate_s(10_000) == 1800 and estimate_s(1000) == 180
    (tmp_path / "test_props.py").write_text(
        "def test_a(): pass\ndef test_b(): pass\ndef test_c(): assert False\n")
    run = (f"import sys, pytest; sys.path.insert(0, {str(ROOT)!r}); "
           "from fuzz.__main__ import ProgressPlugin; "
           "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', 'test_props.py'], "
           "plugins=[ProgressPlugin()]))")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", run], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    lines = [x for x in proc.stdout.splitlines() if x.startswith("fuzz: ")]
    assert [x.split(",")[0] for x in lines] == [
        "fuzz: 1/3 properties (33 %)", "fuzz: 2/3 properties (67 %)",
        "fuzz: 3/3 properties (100 %)"], proc.stdout  # fmt: skip
    assert proc.returncode == 1  # a failing property still fails the run

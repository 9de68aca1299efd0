"""`python -m fuzz [EXAMPLES] [pytest args]`: every tests/test_fuzz_*.py property with EXAMPLES
(default 10 000) fresh generated cases each, no per-test time limit. `make test` runs the same
tests with a short, fixed set of cases.

It says at the start about how long it takes (FULL_RUN_S for 10 000 cases, scaled by EXAMPLES)
and prints a line per finished property with an ETA (bench/progress.py)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench.progress import Progress, announce

ROOT = Path(__file__).resolve().parents[1]
FULL_RUN_S = 30 * 60.0
"""10 000 cases per property on this project's 2-core machines (README "Performance")."""


def estimate_s(examples: int) -> float:
    """The run's length, scaled from FULL_RUN_S (the cases dominate; collection is ~seconds)."""
    return FULL_RUN_S * examples / 10_000


class _ReporterLines:
    """A stream that writes whole lines through pytest's terminal reporter, so a progress line
    never sticks to pytest's own dots."""

    def __init__(self, reporter: Any) -> None:
        self.reporter = reporter

    def write(self, text: str) -> None:
        writer = getattr(self.reporter, "_tw", None)  # pytest's TerminalWriter
        if writer is not None and writer.width_of_current_line:
            self.reporter.write("\n")  # after pytest's dots for the property just run
        for line in text.splitlines():
            self.reporter.write_line(line)

    def flush(self) -> None:
        self.reporter.flush()

    def isatty(self) -> bool:
        return False  # lines, not a redrawn bar: pytest writes to the same terminal


class ProgressPlugin:
    """A pytest plugin: a progress line with an ETA each time a property finishes."""

    def __init__(self) -> None:
        self.progress: Progress | None = None

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if session.items and reporter is not None:
            self.progress = Progress("fuzz", total=len(session.items), unit="properties",
                                     stream=_ReporterLines(reporter), every_s=0)  # fmt: skip

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        if self.progress is not None:
            self.progress.step(force=True)


def main(argv: list[str]) -> int:
    examples = argv[0] if argv and argv[0].isdigit() else "10000"
    rest = argv[1:] if argv and argv[0].isdigit() else argv
    os.environ["CCROUTER_FUZZ_EXAMPLES"] = examples
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_fuzz_*.py"))
    print(f"fuzz: {examples} cases per property in {', '.join(files)}", flush=True)
    announce("fuzz", estimate_s(int(examples)), "on 2 cores; a line per property below")
    started = time.monotonic()
    os.chdir(ROOT)
    code = pytest.main([*files, "-p", "no:cacheprovider", "-o", "timeout=0", "-q",
                        "--hypothesis-show-statistics", *rest],
                       plugins=[ProgressPlugin()])  # fmt: skip
    print(f"fuzz: done in {time.monotonic() - started:.0f} s, exit code {int(code)}")
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

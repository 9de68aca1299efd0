"""`python -m fuzz [EXAMPLES] [pytest args]`: every tests/test_fuzz_*.py property with EXAMPLES
(default 10 000) fresh generated cases each, no per-test time limit. `make test` runs the same
tests with a short, fixed set of cases."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    examples = argv[0] if argv and argv[0].isdigit() else "10000"
    rest = argv[1:] if argv and argv[0].isdigit() else argv
    os.environ["CCROUTER_FUZZ_EXAMPLES"] = examples
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_fuzz_*.py"))
    print(f"fuzz: {examples} cases per property in {', '.join(files)}", flush=True)
    started = time.monotonic()
    os.chdir(ROOT)
    code = pytest.main([*files, "-p", "no:cacheprovider", "-o", "timeout=0", "-q",
                        "--hypothesis-show-statistics", *rest])  # fmt: skip
    print(f"fuzz: done in {time.monotonic() - started:.0f} s, exit code {int(code)}")
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

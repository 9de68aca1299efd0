"""The architecture holds (import-linter's contracts in pyproject.toml), and the contracts do bite:
a feature importing the wiring, a pure model importing asyncio, or one feature importing another
outside the declared seams makes `lint-imports` fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed")


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=tree, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layering")
    shutil.copytree(ROOT / "ccrouter", root / "ccrouter",
                    ignore=shutil.ignore_patterns("__pycache__", "static"))  # fmt: skip
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_contracts_hold() -> None:
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("routing/feature.py", "import ccrouter.app", "Layers"),
    ("reports/model.py", "import asyncio", "Pure models import no I/O"),
    ("callbacks/service.py", "import ccrouter.ivr.service", "Features are independent"),
    ("pbx/ami/translate.py", "import ccrouter.calls.tracker", "Asterisk knows no feature"),
    ("sim/core.py", "import ccrouter.config", "honest peer"),
    ("demo/report.py", "import ccrouter.callbacks.tables", "only the wiring names the callbacks"),
])  # fmt: skip
def test_breaking_a_seam_fails_lint(tree: Path, module: str, line: str, contract: str) -> None:
    path = tree / "ccrouter" / module
    original = path.read_text()
    path.write_text(original + f"\n{line}  # injected by the test\n")
    try:
        result = lint(tree)
    finally:
        path.write_text(original)
    assert result.returncode != 0
    broken = result.stdout[result.stdout.index("Broken contracts"):]
    assert contract in broken, result.stdout

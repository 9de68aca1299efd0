"""The wheel: built from a copy of the checkout, installed into a fresh virtualenv outside it,
`ccrouter --version`, `ccrouter check` (the packaged default config) and `ccrouter demo` work
from an empty directory: migrations, static files and the sample config travel in the wheel.

About a minute: the build (an isolated one: setuptools from PyPI or pip's cache) and a 10 s
demo. The fresh venv gets the wheel with --no-deps and reads the dependencies from the test
interpreter's site-packages through a .pth line (a plain path: that directory's own .pth files,
such as an editable install of the checkout, are not processed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(400)


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)  # fmt: skip


def _copy_checkout(dest: Path) -> None:
    """The files git would commit (tracked, and new ones not ignored): no venv, no caches."""
    listed = _run("git", "ls-files", "-co", "--exclude-standard", "-z", cwd=ROOT)
    assert listed.returncode == 0, listed.stderr
    for name in filter(None, listed.stdout.split("\0")):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the built wheel; its bin directory."""
    base = tmp_path_factory.mktemp("package")
    src, out, venv = base / "src", base / "dist", base / "venv"
    _copy_checkout(src)
    built = _run(sys.executable, "-m", "build", "--wheel", "--outdir", out, src, cwd=base)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = out.glob("ccrouter-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for packaged in ("ccrouter/default.yaml", "ccrouter/alembic.ini",
                     "ccrouter/db/migrations/env.py", "ccrouter/web/static/wallboard.html"):
        assert packaged in names  # fmt: skip
    assert any(n.startswith("ccrouter/db/migrations/versions/0001") for n in names)
    made = _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=base)
    assert made.returncode == 0, made.stderr
    py = venv / "bin" / "python"
    site = _run(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=base)
    (Path(site.stdout.strip()) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = _run(sys.executable, "-m", "pip", "--python", py, "install", "--no-deps",
               "--no-index", wheel, cwd=base)  # fmt: skip
    assert pip.returncode == 0, pip.stdout[-2000:] + pip.stderr[-2000:]
    return venv / "bin"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CCROUTER_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}  # fmt: skip
    return env


def test_the_installed_package_is_the_wheel_not_the_checkout(installed: Path,
                                                             tmp_path: Path) -> None:
    where = _run(installed / "python", "-c", "import ccrouter; print(ccrouter.__file__)",
                 cwd=tmp_path, env=_env())  # fmt: skip
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(installed.parent)
    version = _run(installed / "ccrouter", "--version", cwd=tmp_path, env=_env())
    assert (version.returncode, version.stdout.strip()) == (0, "ccrouter 0.1.0")


def test_the_packaged_default_config_is_used_outside_a_checkout(installed: Path,
                                                                tmp_path: Path) -> None:
    check = _run(installed / "ccrouter", "check", cwd=tmp_path, env=_env())
    assert check.returncode == 0, check.stderr
    assert "ccrouter/default.yaml: OK (6 targets, 6 operators)" in check.stdout
    # the demo: migrations run, calls are routed, cards are written - into ./var, not into
    # site-packages
    demo = _run(installed / "ccrouter", "demo", "--duration", "10", cwd=tmp_path, env=_env(),
                timeout=120)  # fmt: skip
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "report: var/ccrouter-demo-report.html" in demo.stdout
    cards = next(line for line in demo.stdout.splitlines() if line.strip().startswith("cards:"))
    assert int(cards.split(":")[1]) > 0
    assert (tmp_path / "var" / "ccrouter-demo.db").exists()  # the demo's own, beside ccrouter.db
    assert not list(installed.parent.glob("lib/python*/site-packages/var"))

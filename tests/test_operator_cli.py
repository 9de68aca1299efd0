"""`ccrouter operator ...` against the config's database, and a running daemon picking it up."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ccrouter.cli import main
from tests.conftest import ROOT
from tests.routing_stack import routing_stack
from tests.stack import wait_until

EXAMPLE = ROOT / "config" / "ccrouter.yaml"


def config_for(tmp_path: Path, db: Path | str) -> Path:
    """The example config on database file `db`, or on database URL `db` (a str)."""
    url = db if isinstance(db, str) else f"sqlite+aiosqlite:///{db}"
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "sqlite+aiosqlite:///../var/ccrouter.db", url)
    path = tmp_path / "ccrouter.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def run(config: Path, *args: str) -> int:
    return main(["operator", "--config", str(config), *args])


def test_login_pause_skills_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    cfg = config_for(tmp_path, db_url)  # a SQLite file, then a PostgreSQL database
    assert run(cfg, "login", "op1002") == 0
    assert capsys.readouterr().out.strip().startswith("op1002: ready; skills")
    assert run(cfg, "pause", "op1002", "--reason", "lunch") == 0
    assert run(cfg, "skills", "op1002", "uz=70", "general=0") == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == "op1002: paused; skills ru=100 uz=70 wallet=80"
    assert run(cfg, "list") == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "paused (lunch)" in lines["op1002"] and "uz=70" in lines["op1002"]
    assert "ready" in lines["op1001"]  # logged_in: true in the example
    assert "logged out" in lines["op1003"]
    assert run(cfg, "skills", "op1002", "--reset") == 0
    assert "general=90" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "message"), [
    (("login", "op9999"), "unknown operator 'op9999'; configured: op1001, op1002"),
    (("skills", "op1001", "klingon=50"), "unknown skill 'klingon'"),
    (("skills", "op1001", "ru=150"), "level must be 0..100, got 150"),
    (("skills", "op1001"), "give SKILL=LEVEL pairs or --reset"),
])  # fmt: skip
def test_bad_commands_say_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    cfg = config_for(tmp_path, tmp_path / "cards.db")
    assert run(cfg, *args) == 2
    assert message in capsys.readouterr().err


def test_bad_level_syntax_is_an_argument_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        run(config_for(tmp_path, tmp_path / "c.db"), "skills", "op1001", "ru:90")
    assert exc.value.code == 2
    assert "expected skill=level" in capsys.readouterr().err


async def test_a_running_daemon_applies_cli_changes(tmp_path: Path) -> None:
    async with routing_stack(tmp_path) as st:
        db = st.settings.database.url.removeprefix("sqlite+aiosqlite:///")
        cfg = config_for(tmp_path, Path(db))
        # the CLI runs its own event loop: in a thread, as a separate process would
        assert await asyncio.to_thread(run, cfg, "login", "op1005") == 0
        await wait_until(lambda: "PJSIP/1005" in st.members("terminal-uz"), what="added")
        assert st.members("terminal-uz")["PJSIP/1005"] == (20, False)  # uz 100, terminal 80
        assert await asyncio.to_thread(run, cfg, "pause", "op1005", "--reason", "coffee") == 0
        await wait_until(lambda: st.members("terminal-uz")["PJSIP/1005"][1], what="paused")
        assert await asyncio.to_thread(run, cfg, "logout", "op1005") == 0
        await wait_until(lambda: "PJSIP/1005" not in st.members("terminal-uz"), what="removed")


# What `ccrouter operator login` must not import: the daemon, the web, AMI, the simulator and,
# on a database already at the head revision, Alembic (start-up time, issue 11 item 5).
HEAVY = ("aiohttp", "panoramisk", "alembic", "ccrouter.app", "ccrouter.web", "ccrouter.sim",
         "ccrouter.pbx.ami", "ccrouter.pbx.agi", "ccrouter.calls.tracker",
         "ccrouter.routing.membership", "ccrouter.callbacks")  # fmt: skip
PROBE = """
import json, sys
from ccrouter.cli import main
code = main(sys.argv[1:])
print(json.dumps([code, sorted(sys.modules)]))
"""


def imported_by(*args: str) -> tuple[int, set[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCROUTER_")}
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    code, modules = json.loads(proc.stdout.splitlines()[-1])
    return code, {m for m in modules if m.split(".")[0] in ("ccrouter", *HEAVY)}


DECLARATIONS = ("ccrouter.callbacks", "ccrouter.callbacks.config", "ccrouter.callbacks.tables")
"""What loading the config needs of the callbacks (their section, their card columns: the
wiring adds them), not their service."""


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m not in DECLARATIONS
                  and any(m == h or m.startswith(h + ".") for h in HEAVY))  # fmt: skip


def test_operator_commands_import_only_what_they_use(tmp_path: Path) -> None:
    cfg = config_for(tmp_path, tmp_path / "cards.db")
    code, modules = imported_by("operator", "--config", str(cfg), "login", "op1002")
    assert code == 0
    assert "alembic" in modules  # a new database: migrated, so the probe sees Alembic at all
    for args in (("login", "op1003"), ("pause", "op1003"), ("list",)):
        code, modules = imported_by("operator", "--config", str(cfg), *args)
        assert code == 0
        assert heavy(modules) == [], args

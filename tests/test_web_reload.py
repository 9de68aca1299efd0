"""Admin config reload over real sockets: admin only; an invalid file changes nothing and names
file:line: key; a valid one applies operators/alerts/reports at once and lists the rest as
needing a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stack import EXAMPLE
from tests.web_stack import web_stack

RELOAD = "/api/v1/admin/reload"


def copy_config(tmp_path: Path) -> Path:
    path = tmp_path / "ccrouter.yaml"
    path.write_text(EXAMPLE.read_text())
    return path


def rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


async def test_reload_applies_what_it_can_and_names_the_rest(tmp_path: Path) -> None:
    path = copy_config(tmp_path)
    async with web_stack(tmp_path, config_path=path) as ws:
        for who in ("op1", "sup"):
            status, body = await ws.call("POST", RELOAD, who)
            assert status == 403 and body["error"] == "forbidden"
        status, _ = await ws.call("POST", RELOAD)
        assert status == 401
        rewrite(path, "name: Anna Smirnova", "name: Anna Petrova")
        rewrite(path, "threshold: 120}", "threshold: 60}")
        rewrite(path, "mask_numbers_for: [operator]", "mask_numbers_for: [operator, supervisor]")
        status, body = await ws.call("POST", RELOAD, "admin")
        assert status == 200, body
        assert {"operators", "alerts", "http.mask_numbers_for"} <= set(body["applied"])
        assert "ami" in body["restart_required"]  # the stack runs faster AMI timers
        assert "http.port" in body["restart_required"]
        assert body["changed"] is True
        _, ops = await ws.call("GET", "/api/v1/live/operators", "sup")
        assert {o["id"]: o["name"] for o in ops}["op1002"] == "Anna Petrova"
        _, me = await ws.call("GET", "/api/v1/me", "sup")
        assert me["numbers_masked"] is True
        assert ws.web.ctx is not None
        rule = {r.name: r for r in ws.web.ctx.settings.alerts.rules}["long-wait"]
        assert rule.threshold == 60
        # again: nothing new in the file beyond what needs a restart
        status, again = await ws.call("POST", RELOAD, "admin")
        assert status == 200 and again["applied"] == []

        # an invalid file is refused with every error, and nothing changes
        rewrite(path, "name: Anna Petrova", "name: ''")
        rewrite(path, "evaluate_every_s: 10", "evaluate_every_s: soon")
        status, bad = await ws.call("POST", RELOAD, "admin")
        assert status == 400 and bad["error"] == "invalid_config"
        text = "\n".join(bad["errors"])
        line = path.read_text().splitlines().index("  evaluate_every_s: soon") + 1
        assert f"{path}:{line}: alerts.evaluate_every_s:" in text
        assert "operators.1.name" in text or "operators[1].name" in text, text
        _, ops = await ws.call("GET", "/api/v1/live/operators", "sup")
        assert {o["id"]: o["name"] for o in ops}["op1002"] == "Anna Petrova"

        path.unlink()
        status, gone = await ws.call("POST", RELOAD, "admin")
        assert status == 400 and str(path) in "\n".join(gone["errors"])


async def test_reload_without_a_config_file_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CCROUTER_CONFIG", raising=False)
    async with web_stack(tmp_path, config_path=None) as ws:
        status, body = await ws.call("POST", RELOAD, "admin")
        assert status == 409 and "CCROUTER_CONFIG" in body["message"]

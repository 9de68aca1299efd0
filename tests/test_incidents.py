"""Incident announcements: the service over SQLite (survives a restart) and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccrouter.cli import main
from ccrouter.db.engine import make_engine
from ccrouter.db.migrate import migrate
from ccrouter.ivr.incidents import IncidentError, IncidentService

ROOT = Path(__file__).resolve().parents[1]
PRODUCTS = ("wallet", "terminal", "general")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_set_list_expire_clear_and_survive_a_restart(db_url: str) -> None:
    url = db_url  # a SQLite file, then a PostgreSQL database
    clock = Clock()
    engine = make_engine(url)
    await migrate(engine)
    svc = IncidentService(engine, PRODUCTS, clock=clock)
    a = await svc.set(products=["wallet"], prompt="ccrouter/outage", text="top-ups late",
                      duration_s=3600, created_by="sv1")  # fmt: skip
    b = await svc.set(text="all lines: storm", duration_s=60)
    assert [i.id for i in await svc.list()] == [b.id, a.id]
    assert [x.products for x in await svc.announcements()] == [frozenset({"wallet"}),
                                                               frozenset()]  # fmt: skip
    await engine.dispose()

    engine = make_engine(url)  # a restart: a new engine on the same file
    svc = IncidentService(engine, PRODUCTS, clock=clock)
    clock.now += 120  # b expired
    assert [i.id for i in await svc.list()] == [a.id]
    assert (await svc.clear(a.id)).cleared_at == clock.now
    assert await svc.list() == []
    assert len(await svc.list(include_inactive=True)) == 2
    with pytest.raises(IncidentError, match="no incident"):
        await svc.clear(a.id)
    await engine.dispose()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"products": ["billing"], "text": "x", "duration_s": 60}, "unknown product line"),
    ({"duration_s": 60}, "a prompt to play or a text"),
    ({"text": "x"}, "exactly one of a duration or an expiry"),
    ({"text": "x", "duration_s": 60 * 86400}, "within 31 days"),
    ({"prompt": "bad prompt", "duration_s": 60}, "a sound name"),
])  # fmt: skip
async def test_bad_requests_name_the_problem(tmp_path: Path, kwargs: dict[str, object],
                                             message: str) -> None:  # fmt: skip
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    await migrate(engine)
    with pytest.raises(IncidentError, match=message):
        await IncidentService(engine, PRODUCTS).set(**kwargs)  # type: ignore[arg-type]
    await engine.dispose()


def test_cli_set_list_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    # in-process: keep the test session's structlog configuration as it is
    monkeypatch.setattr("ccrouter.logs.configure_logging", lambda *a, **k: None)
    config = tmp_path / "c.yaml"
    text = (ROOT / "config" / "ccrouter.yaml").read_text()
    config.write_text(text.replace("sqlite+aiosqlite:///../var/ccrouter.db",
                                   f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"))  # fmt: skip

    def cli(*args: str) -> tuple[int, str, str]:
        try:
            code = main(["incident", "--config", str(config), *args])
        except SystemExit as exc:  # argparse refuses bad arguments with exit code 2
            code = int(exc.code or 0)
        out = capsys.readouterr()
        lines = [x for x in out.out.splitlines() if " [info " not in x and " [debug " not in x]
        return code, "\n".join(lines), out.err  # (structlog's own lines dropped)

    code, out, err = cli("set", "--product", "wallet", "--prompt", "ccrouter/outage", "--text",
                         "late", "--for", "1h")  # fmt: skip
    assert code == 0 and out.startswith("incident 1 set until ") and "on wallet" in out, err
    code, out, _ = cli("list")
    assert code == 0 and "active" in out and "ccrouter/outage" in out
    code, _, err = cli("set", "--product", "billing", "--text", "x", "--for", "1h")
    assert code == 2 and "unknown product line(s) billing" in err
    code, _, err = cli("set", "--text", "x", "--for", "soon")
    assert code == 2 and "not a duration: 'soon'" in err
    assert cli("clear", "1")[1].strip() == "incident 1 cleared"
    code, _, err = cli("clear", "1")
    assert code == 2 and "no incident 1 to clear" in err
    assert cli("list")[1].strip() == "no active incidents"

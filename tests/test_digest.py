"""Scheduled KPI report mail (`reports.schedules`): the due times, the config errors, and the
mail itself through a real SMTP server (aiosmtpd) with the clock moved: one mail with the
tables, the chart and the CSV (the KPI endpoint's, byte for byte), not sent again after a
restart, sent once by two services on one database (SQLite and PostgreSQL), and
`ccrouter report send NAME`."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import re
import urllib.parse
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import yaml

from ccrouter.calls.model.cards import CardWrite
from ccrouter.cli import main
from ccrouter.config import Settings, check_settings
from ccrouter.config.helpdesk import MailSettings
from ccrouter.config.report_schedules import (
    At,
    BadSchedule,
    ReportSchedule,
    ReportScope,
    parse_at,
)
from ccrouter.config.sections import root_model
from ccrouter.db.engine import make_engine
from ccrouter.db.migrate import migrate
from ccrouter.db.tables import report_runs
from ccrouter.digest.feature import install as digest
from ccrouter.digest.model import latest_due, next_due, period
from ccrouter.digest.service import DigestService
from ccrouter.web.auth import Role, TokenScope, TokenStore
from tests import test_helpdesk
from tests.stack import wait_until
from tests.test_config import BASE, write
from tests.test_helpdesk import Mailbox
from tests.test_operator_cli import config_for
from tests.web_stack import WebStack, web_settings, web_stack

mailbox = test_helpdesk.mailbox  # a real SMTP server in the test process, as a fixture

TZ = "Asia/Tashkent"  # the example config's reports.timezone (UTC+5)


def local(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(TZ)).timestamp()


class Clock:
    def __init__(self, at: str) -> None:
        self.now = local(at)

    def __call__(self) -> float:
        return self.now

    def set(self, at: str) -> None:
        self.now = local(at)


# --- when -----------------------------------------------------------------------------------


def test_at_strings() -> None:
    assert parse_at("daily 07:00") == At(7, 0)
    assert parse_at(" Weekly MON 7:30 ") == At(7, 30, weekday=0)
    for bad, says in (("daily 7", "is not 'daily HH:MM'"), ("daily 24:00", "hours 00..23"),
                      ("weekly 07:00", "names its day"), ("weekly fri 07:60", "minutes"),
                      ("daily mon 07:00", "names no day"), ("weekly mo 07:00", "is not"),
                      ("weekly xyz 07:00", "unknown day 'xyz'"), ("hourly", "is not")):
        with pytest.raises(BadSchedule, match=re.escape(says)):
            parse_at(bad)


def test_due_times_and_periods() -> None:
    daily, monday = At(7, 0), At(7, 0, weekday=0)
    # Tuesday 2026-03-10
    assert latest_due(daily, TZ, local("2026-03-10T06:59:59")) == local("2026-03-09T07:00")
    assert latest_due(daily, TZ, local("2026-03-10T07:00:00")) == local("2026-03-10T07:00")
    assert next_due(daily, TZ, local("2026-03-10T07:00:00")) == local("2026-03-11T07:00")
    assert latest_due(monday, TZ, local("2026-03-10T12:00")) == local("2026-03-09T07:00")
    assert latest_due(monday, TZ, local("2026-03-09T06:00")) == local("2026-03-02T07:00")
    assert next_due(monday, TZ, local("2026-03-10T12:00")) == local("2026-03-16T07:00")
    assert period(local("2026-03-10T07:00"), TZ, 1) == (local("2026-03-09T00:00"),
                                                       local("2026-03-10T00:00"))
    assert period(local("2026-03-09T07:00"), TZ, 7) == (local("2026-03-02T00:00"),
                                                       local("2026-03-09T00:00"))
    # the day of a daylight saving change is 23 hours long, and still one local day
    berlin = ZoneInfo("Europe/Berlin")
    start, end = period(dt.datetime(2026, 3, 30, 7, tzinfo=berlin).timestamp(), "Europe/Berlin", 1)
    assert end - start == 23 * 3600
    due = latest_due(daily, "Europe/Berlin", dt.datetime(2026, 3, 29, 8, tzinfo=berlin).timestamp())
    assert dt.datetime.fromtimestamp(due, berlin).hour == 7


SCHEDULE = """\
mail: {host: 127.0.0.1}
reports:
  schedules:
    - name: wallet-daily
      at: daily 07:00
      recipients: [unit@bank.example]
"""


@pytest.mark.parametrize(("old", "new", "line", "key", "message"), [
    ("daily 07:00", "daily 7am", 27, "reports.schedules[0].at",
     "'daily 7am' is not 'daily HH:MM' or 'weekly DAY HH:MM'"),
    ("daily 07:00", "weekly sun 25:00", 27, "reports.schedules[0].at", "hours 00..23"),
    ("daily 07:00", "weekly 07:00", 27, "reports.schedules[0].at", "names its day"),
    ("      recipients", "      timezone: Mars/Base\n      recipients", 28,
     "reports.schedules[0].timezone", "unknown time zone 'Mars/Base'"),
    ("[unit@bank.example]", "[unit]", 28, "reports.schedules[0].recipients",
     "'unit' is not an e-mail address"),
    ("      recipients", "      scope: {products: [cards]}\n      recipients", 28,
     "reports.schedules[0].scope.products[0]", "unknown product line 'cards'"),
    ("      recipients: [unit@bank.example]\n", "      recipients: [unit@bank.example]\n"
     "      scope: {teams: [t], products: [wallet]}\nteams: [{name: t}]\n", 29,
     "reports.schedules[0].scope", "not both"),
    ("mail: {host: 127.0.0.1}\n", "", 24, "reports.schedules", "set mail.host"),
    ("      recipients: [unit@bank.example]\n",
     "      recipients: [unit@bank.example]\n    - {name: wallet-daily, at: daily 08:00, "
     "recipients: [a@b.example]}\n", 29, "reports.schedules[1].name",
     "duplicate schedule 'wallet-daily'"),
])  # fmt: skip
def test_bad_schedules_are_config_errors_with_file_and_line(
    tmp_path: Path, old: str, new: str, line: int, key: str, message: str
) -> None:
    assert check_settings(write(tmp_path, BASE + SCHEDULE), {}) == []
    assert SCHEDULE.count(old) == 1
    path = write(tmp_path, BASE + SCHEDULE.replace(old, new))
    errors = check_settings(path, {})
    assert [(e.line, e.key) for e in errors] == [(line, key)], errors
    assert message in errors[0].message
    assert str(errors[0]).startswith(f"{path}:{line}:")


# --- the mail -------------------------------------------------------------------------------

WALLET = ReportSchedule(name="wallet-daily", at="daily 07:00",
                        scope=ReportScope(products=["wallet"]),
                        recipients=["unit@bank.example.uz", "head@bank.example.uz"])


def mail_settings(port: int, *schedules: ReportSchedule, **mail: Any) -> Settings:
    s = web_settings(mail=MailSettings(host="127.0.0.1", port=port, sender="kpi@cc.example",
                                       backoff_s=0.01, **mail))  # fmt: skip
    reports = s.reports.model_copy(update={"schedules": list(schedules or [WALLET]),
                                           "schedule_poll_s": 0.05})  # fmt: skip
    return s.model_copy(update={"reports": reports})


DAY = [  # Monday 2026-03-09, local time: (start, queue, outcome, wait_s, operator)
    ("09:10", "wallet-ru", "answered", 5, "op1001"),
    ("09:40", "wallet-ru", "answered", 40, "op1002"),
    ("09:50", "wallet-uz", "abandoned", 30, None),
    ("14:05", "terminal-ru", "answered", 3, "op1003"),  # another line: not in wallet's scope
    ("14:20", "wallet-uz", "answered", 8, "op1004"),
]


async def add_day(app: Any, settings: Settings) -> None:
    ops = {o.id: o for o in settings.operators}
    for at, queue, outcome, wait, op in DAY:
        start = local(f"2026-03-09T{at}")
        t = settings.target(queue)
        fields: dict[str, Any] = {"state": "closed", "kind": "inbound", "started_at": start,
                                  "queue": queue, "target": queue, "product": t.product,
                                  "language": t.language, "outcome": outcome, "wait_s": wait}
        if op:
            fields |= {"interface": ops[op].interface, "operator": ops[op].name, "talk_s": 60.0,
                       "ended_at": start + wait + 60, "completed_at": start + wait + 90}
        app.writer.submit(CardWrite(app.numbers.next(), fields, insert=True))
    await app.writer.flush()


async def endpoint_csv(ws: WebStack, scope: TokenScope) -> str:
    token, _ = await TokenStore(ws.st.app.engine).create("unit", Role.VIEWER, scope=scope)
    ws.tokens["unit"] = token
    q = urllib.parse.urlencode({"from": "2026-03-09T00:00:00+05:00",
                                "to": "2026-03-10T00:00:00+05:00", "format": "csv"})
    status, text = await ws.call("GET", f"/api/v1/reports/kpi?{q}", "unit")
    assert status == 200, text
    return str(text)


def parts(msg: Any) -> tuple[str, str, tuple[str, str]]:
    html = msg.get_body(preferencelist=("html",)).get_content()
    text = msg.get_body(preferencelist=("plain",)).get_content()
    (att,) = list(msg.iter_attachments())
    assert att.get_content_type() == "text/csv" and att.get_content_charset() == "utf-8"
    return html, text, (att.get_filename(), att.get_content())


async def test_a_daily_report_is_mailed_once_and_not_again_after_a_restart(
    tmp_path: Path, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    clock = Clock("2026-03-10T06:59:00")
    settings = mail_settings(port)
    feature = functools.partial(digest, clock=clock)
    async with web_stack(tmp_path, settings, features=[feature]) as ws:
        await add_day(ws.st.app, settings)
        await wait_until(lambda: rows(ws) is not None, what="the schedule's row")  # first look
        await asyncio.sleep(0.2)  # four looks before 07:00: nothing due
        assert box.messages == []
        clock.set("2026-03-10T07:00:30")
        await wait_until(lambda: len(box.messages) == 1, what="the report mail")
        await asyncio.sleep(0.3)  # more looks: the run is taken
        expected_csv = await endpoint_csv(ws, TokenScope(products=("wallet",)))
    assert len(box.messages) == 1
    rcpt, msg = box.messages[0]
    assert sorted(rcpt) == ["head@bank.example.uz", "unit@bank.example.uz"]
    assert msg["From"] == "kpi@cc.example" and msg["X-Ccrouter-Schedule"] == "wallet-daily"
    assert msg["Subject"] == "KPI report wallet-daily: 2026-03-09"
    html, text, (name, csv_body) = parts(msg)
    assert name == "kpi-wallet-daily-2026-03-09.csv"
    assert csv_body == expected_csv  # GET /api/v1/reports/kpi?format=csv for that scope
    assert "terminal-ru" not in csv_body and "terminal-ru" not in html  # outside the scope
    assert "scope: products wallet" in text and "scope: products wallet" in html
    # the per-queue table: wallet-ru 2 offered, both answered, one within 20 s
    wallet_ru = re.search(r"<tr><td>wallet-ru</td>(.*?)</tr>", html)
    assert wallet_ru is not None
    assert re.findall(r'<td class="n">([^<]*)</td>', wallet_ru.group(1))[:4] == [
        "2", "2", "0", "50.0%"]
    assert "<tr><td>2026-03-09 09:00</td>" in html and "<tr><td>2026-03-09 14:00</td>" in html
    svg = html[html.index("<svg"):html.index("</svg>")]
    bars = re.findall(r'<rect class="load"[^>]*><title>(.*?)</title>', svg)
    assert bars == ["Mon 09:00 offered 3", "Mon 14:00 offered 1"]
    assert '<polyline class="sl"' in svg
    (row,) = await runs(tmp_path)
    assert row.due_at == local("2026-03-10T07:00") and row.sent_at is not None

    clock.set("2026-03-10T07:05:00")  # a restart five minutes later: already sent
    async with web_stack(tmp_path, settings, features=[feature]) as ws:
        await wait_until(lambda: rows(ws) is not None, what="the schedule's row")
        await asyncio.sleep(0.3)
        assert len(box.messages) == 1
        clock.set("2026-03-11T07:00:01")  # the next day's run
        await wait_until(lambda: len(box.messages) == 2, what="the next day's mail")
    assert box.messages[1][1]["Subject"] == "KPI report wallet-daily: 2026-03-10"


def rows(ws: WebStack) -> Any:
    """The scheduler's row, read synchronously from the SQLite file (None: not made yet)."""
    db = ws.st.settings.database.url.removeprefix("sqlite+aiosqlite:///")
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(report_runs)).first()
    finally:
        engine.dispose()


async def runs(tmp_path: Path) -> list[Any]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'cards.db'}")
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(sa.select(report_runs))).all())
    finally:
        await engine.dispose()


async def test_two_services_on_one_database_send_each_run_once(
    db_url: str, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    team = ReportSchedule(name="floor-1-weekly", at="weekly tue 07:00", format="html",
                          scope=ReportScope(teams=["floor-1"]), recipients=["lead@cc.example"])
    settings = mail_settings(port, WALLET, team)
    clock = Clock("2026-03-10T06:00:00")
    engine = make_engine(db_url)
    try:
        await migrate(engine)
        a, b = (DigestService(settings, engine, clock=clock) for _ in range(2))
        assert await a.tick() == [] and await b.tick() == []
        clock.set("2026-03-10T07:00:00")
        for i in range(3):  # both look at once, three times: each run is sent by one of them
            sent = await asyncio.gather(a.tick(), b.tick())
            assert sorted(n for names in sent for n in names) == (
                ["floor-1-weekly", "wallet-daily"] if i == 0 else [])
        await wait_until(lambda: len(box.messages) == 2, what="two mails")
        await asyncio.sleep(0.1)
        subjects = sorted(m["Subject"] for _, m in box.messages)
        assert subjects == ["KPI report floor-1-weekly: 2026-03-03 – 2026-03-09",
                            "KPI report wallet-daily: 2026-03-09"]
        weekly = next(m for _, m in box.messages if m["X-Ccrouter-Schedule"] == "floor-1-weekly")
        assert list(weekly.iter_attachments()) == []  # format: html
        assert "scope: teams floor-1" in weekly.get_body(preferencelist=("html",)).get_content()
    finally:
        await engine.dispose()


async def test_a_mail_that_cannot_be_sent_is_retried_then_recorded(tmp_path: Path) -> None:
    settings = mail_settings(1, WALLET, attempts=3)  # nothing listens on port 1
    clock = Clock("2026-03-10T07:00:00")
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'cards.db'}")
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    try:
        await migrate(engine)
        service = DigestService(settings, engine, clock=clock, sleep=sleep)
        await service.runs.claim("wallet-daily", local("2026-03-09T07:00"),
                                 first=local("2026-03-09T07:00"), by="x", now=clock())
        assert await service.tick() == []
        assert slept == [0.01, 0.02]  # 3 attempts, backoff doubling
        (run,) = (await service.runs.runs()).values()
        assert run.sent_at is None and run.error and "Connect" in run.error
        assert await service.tick() == [] and len(slept) == 2  # the run is not taken again
    finally:
        await engine.dispose()


def test_report_send_now_and_an_unknown_name(
    tmp_path: Path, mailbox: tuple[Mailbox, int], capsys: pytest.CaptureFixture[str]
) -> None:
    box, port = mailbox
    cfg = config_for(tmp_path, tmp_path / "cards.db")
    data = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    data["mail"] = {"host": "127.0.0.1", "port": port, "sender": "kpi@cc.example"}
    data["reports"]["schedules"] = [{"name": "centre", "at": "weekly mon 07:00",
                                     "recipients": ["boss@cc.example"]}]  # fmt: skip
    cfg.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["report", "--config", str(cfg), "send", "centre"]) == 0
    assert "sent centre to boss@cc.example" in capsys.readouterr().out
    ((rcpt, msg),) = box.messages
    assert rcpt == ["boss@cc.example"] and msg["Subject"].startswith("KPI report centre: ")
    html, _, (name, body) = parts(msg)
    assert "<svg" in html and name.startswith("kpi-centre-")
    assert body.startswith("section,key,start,offered")
    assert main(["report", "--config", str(cfg), "list"]) == 0
    assert "centre  weekly mon 07:00 Asia/Tashkent  next " in capsys.readouterr().out

    assert main(["report", "--config", str(cfg), "send", "daily"]) == 2
    assert capsys.readouterr().err.strip() == (
        "report send: unknown schedule 'daily'; reports.schedules: centre")
    assert len(box.messages) == 1


def test_the_sample_schedule_in_the_example_config_is_valid(tmp_path: Path) -> None:
    cfg = config_for(tmp_path, tmp_path / "cards.db")
    lines = cfg.read_text(encoding="utf-8").splitlines()
    start = lines.index("  # schedules:")
    for i in range(start, len(lines)):
        if not lines[i].startswith("  # "):
            break
        lines[i] = "  " + lines[i][4:]
    text = "\n".join(lines) + "\nmail: {host: smtp.example}\n"
    path = write(tmp_path, text, "sample.yaml")
    assert check_settings(path, {}) == []
    (sch,) = root_model().model_validate(yaml.safe_load(text)).reports.schedules
    assert (sch.name, sch.when, sch.days, sch.scope.products) == (
        "wallet-daily", At(7, 0), 1, ["wallet"])


def test_mail_templates_are_needed_only_for_ticket_mails(tmp_path: Path) -> None:
    assert check_settings(write(tmp_path, BASE + SCHEDULE), {}) == []  # reports: no templates
    helpdesk = "helpdesk: {url: 'https://hd.example/t'}\n"
    errors = check_settings(write(tmp_path, BASE + SCHEDULE + helpdesk),
                            {"CCROUTER_HELPDESK_SECRET": "s"})  # fmt: skip
    assert [(e.key, e.message) for e in errors] == [
        ("mail.templates", "the callers' ticket mails need at least one language's templates")]
    assert errors[0].line == 23  # the mail: section

"""The scheduled reports' service: every `reports.schedule_poll_s` it looks for schedules whose
run is due, claims each due run in the database (`ReportRuns.claim`: one sender of several
services and restarts) and mails it; `send_now(name)` mails one at once (`ccrouter report send`).

A report is `build_report` for the schedule's scope (a viewer's product lines / targets or a
team supervisor's teams, resolved as a token's by `ccrouter.web.scope.principal`) over the
local days before the run, the same dict and CSV as `GET /api/v1/reports/kpi?format=csv`.
It goes through the `mail:` server (`ccrouter.helpdesk.mailer.deliver`), tried
`mail.attempts` times with backoff; a run that could not be sent is recorded with its error
(`report_runs.error`) and logged `report_mail_failed`: the next run is the next due one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import time
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.config import Settings
from ccrouter.config.helpdesk import MailSettings
from ccrouter.config.report_schedules import ReportSchedule
from ccrouter.digest.model import latest_due, period
from ccrouter.digest.render import render_html, render_text
from ccrouter.digest.store import ReportRuns
from ccrouter.helpdesk import mailer
from ccrouter.reports.report import build_report, csv_text
from ccrouter.reports.store import Reports
from ccrouter.web.auth import Principal, Role, TokenInfo, TokenScope
from ccrouter.web.scope import principal

log = structlog.get_logger(__name__)

Deliver = Callable[[MailSettings, EmailMessage], Awaitable[str]]


class UnknownSchedule(Exception):
    pass


def schedule_principal(sch: ReportSchedule, settings: Settings) -> Principal:
    """The schedule's scope as a token's: product lines / targets -> a viewer's, teams -> a
    team supervisor's, none -> an unscoped supervisor's (the whole centre)."""
    sc = sch.scope
    role = Role.VIEWER if sc.products or sc.targets else Role.SUPERVISOR
    scope = TokenScope(teams=tuple(sc.teams), products=tuple(sc.products),
                       targets=tuple(sc.targets))  # fmt: skip
    info = TokenInfo(0, f"schedule:{sch.name}", role, None, 0.0, None, scope)
    return principal(info, settings, ())


def scope_text(sch: ReportSchedule) -> str:
    sc = sch.scope
    parts = [f"{k} {', '.join(v)}" for k, v in (("products", sc.products),
                                                 ("targets", sc.targets),
                                                 ("teams", sc.teams)) if v]  # fmt: skip
    return "; ".join(parts) or "the whole centre"


class DigestService:
    def __init__(self, settings: Settings, engine: AsyncEngine, *,
                 clock: Callable[[], float] = time.time, deliver: Deliver = mailer.deliver,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:  # fmt: skip
        self._s = settings
        self._engine = engine
        self.runs = ReportRuns(engine)
        self._clock, self._deliver, self._sleep = clock, deliver, sleep
        who = settings.cluster.instance or socket.gethostname()
        self.instance = f"{who}:{os.getpid()}"

    def schedule(self, name: str) -> ReportSchedule:
        for sch in self._s.reports.schedules:
            if sch.name == name:
                return sch
        names = ", ".join(s.name for s in self._s.reports.schedules) or "(none)"
        raise UnknownSchedule(f"unknown schedule {name!r}; reports.schedules: {names}")

    def _timezone(self, sch: ReportSchedule) -> str:
        return sch.timezone or self._s.reports.timezone

    async def run(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(self._s.reports.schedule_poll_s)

    async def tick(self) -> list[str]:
        """Send every schedule whose latest run this service claims now; their names."""
        sent = []
        now = self._clock()
        for sch in self._s.reports.schedules:
            due = latest_due(sch.when, self._timezone(sch), now)
            try:
                won = await self.runs.claim(sch.name, due, first=due, by=self.instance, now=now)
            except Exception as exc:  # the database is away: the next tick asks again
                log.warning("report_claim_failed", schedule=sch.name, error=str(exc))
                continue
            if won and await self._send_run(sch, due):
                sent.append(sch.name)
        return sent

    async def _send_run(self, sch: ReportSchedule, due: float) -> bool:
        m = self._s.mail
        error = ""
        for attempt in range(1, m.attempts + 1):
            try:
                msg = await self.compose(sch, due)
                message_id = await self._deliver(m, msg)
            except mailer.MailError as exc:
                error = str(exc)
                log.warning("report_mail_attempt_failed", schedule=sch.name, attempt=attempt,
                            error=error)  # fmt: skip
                if attempt < m.attempts:
                    await self._sleep(min(m.backoff_max_s, m.backoff_s * 2 ** (attempt - 1)))
                continue
            except Exception as exc:  # building the report failed (the database)
                error = f"{type(exc).__name__}: {exc}"
                break
            await self.runs.finished(sch.name, due, sent_at=self._clock())
            log.info("report_sent", schedule=sch.name, due=_iso(due), message_id=message_id,
                     recipients=len(sch.recipients))  # fmt: skip
            return True
        log.error("report_mail_failed", schedule=sch.name, due=_iso(due), error=error)
        await self.runs.finished(sch.name, due, sent_at=None, error=error[:500])
        return False

    async def send_now(self, name: str) -> str:
        """Mail the schedule's report now (the days before today), once, outside the schedule
        (its next run is unchanged); the Message-ID. MailError when it cannot be sent."""
        sch = self.schedule(name)
        msg = await self.compose(sch, self._clock())
        message_id = await self._deliver(self._s.mail, msg)
        log.info("report_sent_now", schedule=name, message_id=message_id)
        return message_id

    async def report(self, sch: ReportSchedule, due: float) -> dict[str, Any]:
        """The report of the run at `due`: the KPI endpoint's, for the schedule's scope."""
        tz = self._timezone(sch)
        start, end = period(due, tz, sch.days)
        r = self._s.reports
        local = self._s.model_copy(update={"reports": r.model_copy(update={"timezone": tz})})
        reports = Reports(self._engine, sl_threshold_s=r.sl_threshold_s, timezone=tz,
                          card_deadline_s=r.card_deadline_s)  # fmt: skip
        return await build_report(local, reports, schedule_principal(sch, self._s), start, end)

    async def compose(self, sch: ReportSchedule, due: float) -> EmailMessage:
        report = await self.report(sch, due)
        first = report["from"][:10]
        last = (dt.datetime.fromisoformat(report["to"]) - dt.timedelta(days=1)).date()
        days = first if last.isoformat() == first else f"{first} – {last.isoformat()}"
        title = sch.subject or f"KPI report {sch.name}: {days}"
        scope = scope_text(sch)
        msg = EmailMessage()
        msg["From"], msg["To"] = self._s.mail.sender, ", ".join(sch.recipients)
        msg["Subject"] = title
        msg["Date"] = format_datetime(dt.datetime.fromtimestamp(self._clock(), dt.UTC))
        msg["X-Ccrouter-Schedule"] = sch.name
        msg.set_content(render_text(report, title=title, scope=scope))
        if sch.format != "csv":
            msg.add_alternative(render_html(report, title=title, scope=scope), subtype="html")
        if sch.format != "html":
            # as bytes (base64): the endpoint's CSV byte for byte, its \n line ends kept
            msg.add_attachment(csv_text(report).encode("utf-8"), maintype="text", subtype="csv",
                               params={"charset": "utf-8"},
                               filename=f"kpi-{sch.name}-{first}.csv")  # fmt: skip
        return msg


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")

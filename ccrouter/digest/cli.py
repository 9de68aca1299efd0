"""`ccrouter report send NAME`: mail a scheduled report now (the local days before today, as
its next run would report them), outside its schedule; `ccrouter report list`: the schedules
and their last run."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

from ccrouter.cli_support import database, run_command, settings_or_none
from ccrouter.digest.model import next_due
from ccrouter.digest.service import DigestService, UnknownSchedule, scope_text
from ccrouter.helpdesk.mailer import MailError


def add_parser(sub: Any, config_help: str) -> None:
    p = sub.add_parser("report", help="scheduled KPI report mail: send one now, list them")
    p.add_argument("--config", type=Path, default=None, help=config_help)
    rsub = p.add_subparsers(dest="report_command", required=True, metavar="COMMAND")
    s = rsub.add_parser("send", help="mail the report of reports.schedules NAME now")
    s.add_argument("name", metavar="NAME")
    s.set_defaults(func=send_command)
    ls = rsub.add_parser("list", help="the schedules, their next and last runs")
    ls.set_defaults(func=list_command)


def send_command(args: argparse.Namespace) -> int:
    settings = settings_or_none(args.config)
    if settings is None:
        return 2
    names = [s.name for s in settings.reports.schedules]
    if args.name not in names:
        print(f"report send: unknown schedule {args.name!r}; reports.schedules: "
              f"{', '.join(names) or '(none)'}", file=sys.stderr)  # fmt: skip
        return 2
    if not settings.mail.host:
        print("report send: no SMTP server: set mail.host", file=sys.stderr)
        return 2

    async def go() -> int:
        async with database(settings) as engine:
            service = DigestService(settings, engine)
            try:
                message_id = await service.send_now(args.name)
            except (MailError, UnknownSchedule) as exc:
                print(f"report send {args.name}: {exc}", file=sys.stderr)
                return 1
        sch = service.schedule(args.name)
        print(f"sent {args.name} to {', '.join(sch.recipients)} ({message_id})")
        return 0

    return run_command(go(), "report send")


def _when(ts: float | None, tz: dt.tzinfo | None = None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, tz).isoformat(timespec="minutes")


def list_command(args: argparse.Namespace) -> int:
    settings = settings_or_none(args.config)
    if settings is None:
        return 2

    async def go() -> int:
        async with database(settings) as engine:
            runs = await DigestService(settings, engine).runs.runs()
        now = time.time()
        for sch in settings.reports.schedules:
            tz = sch.timezone or settings.reports.timezone
            run = runs.get(sch.name)
            last = "never" if run is None or run.claimed_at is None else (
                f"{_when(run.due_at)} "
                + (f"sent {_when(run.sent_at)}" if run.sent_at else f"failed: {run.error}"))
            print(f"{sch.name}  {sch.at} {tz}  next {_when(next_due(sch.when, tz, now))}  "
                  f"last {last}  scope {scope_text(sch)}  to {', '.join(sch.recipients)}")
        return 0

    return run_command(go(), "report list")

"""`ccrouter incident set|list|clear`: incident announcements in the config's database.

    ccrouter incident set --product wallet --prompt ccrouter/outage-wallet \\
        --text "Wallet top-ups delayed" --for 1h
    ccrouter incident list [--all]
    ccrouter incident clear 3

Safe while the daemon runs: both use the same SQLite database (WAL), and the IVR reads the
active incidents at every call.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from ccrouter.cli_support import database, run_command, settings_or_none
from ccrouter.config import Settings


def parse_duration(text: str) -> float:
    """`90m`, `1h`, `2h30m`, `1d`, `3600` (seconds) -> seconds."""
    from ccrouter.ivr.incidents import IncidentError
    from ccrouter.ivr.incidents import parse_duration as seconds

    try:
        return seconds(text)
    except IncidentError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_until(text: str) -> float:
    """An ISO time (`2026-05-01T18:00`, local time unless it has an offset) -> epoch s."""
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (e.g. 2026-05-01T18:00 or 2026-05-01T18:00+05:00)"
        ) from None


def add_parser(sub: Any, config_help: str) -> None:
    p = sub.add_parser("incident", help="set, list or clear incident announcements")
    p.add_argument("--config", type=Path, default=None, help=config_help)
    isub = p.add_subparsers(dest="incident_command", required=True, metavar="ACTION")
    s = isub.add_parser("set", help="announce an incident on product lines until it expires")
    s.add_argument("--product", action="append", default=[], metavar="LINE",
                   help="a product line (repeat for several; none: every line)")  # fmt: skip
    s.add_argument("--prompt", default=None, help="sound to play in the IVR (e.g. ccrouter/outage)")
    s.add_argument("--text", default="", help="what it is about (log, wallboard)")
    when = s.add_mutually_exclusive_group(required=True)
    when.add_argument("--for", dest="duration", type=parse_duration, metavar="DURATION",
                      help="how long: 90m, 1h, 2h30m, 1d")  # fmt: skip
    when.add_argument("--until", type=parse_until, metavar="TIME",
                      help="until an ISO time, e.g. 2026-05-01T18:00")  # fmt: skip
    s.add_argument("--by", default=None, help="who set it (default: $USER)")
    lst = isub.add_parser("list", help="the active incidents (all with --all)")
    lst.add_argument("--all", action="store_true", help="also expired and cleared ones")
    c = isub.add_parser("clear", help="end an incident now")
    c.add_argument("id", type=int)
    p.set_defaults(func=cmd_incident)


def _fmt_time(at: float | None) -> str:
    return "-" if at is None else datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M")


def cmd_incident(args: argparse.Namespace) -> int:
    settings = settings_or_none(args.config)
    if settings is None:
        return 2
    return run_command(_run(settings, args), f"incident {args.incident_command}")


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    import getpass

    from ccrouter.db.engine import retry_locked
    from ccrouter.ivr.incidents import IncidentError, IncidentService

    async with database(settings) as engine:
        service = IncidentService(engine, settings.products)
        out: Callable[[str], None] = print
        try:
            if args.incident_command == "set":
                inc = await retry_locked(lambda: service.set(
                    products=args.product, prompt=args.prompt, text=args.text,
                    duration_s=args.duration, expires_at=args.until,
                    created_by=args.by or getpass.getuser(),
                ), what="setting the incident")  # fmt: skip
                out(f"incident {inc.id} set until {_fmt_time(inc.expires_at)} on "
                    f"{', '.join(inc.products) or 'every line'}")  # fmt: skip
            elif args.incident_command == "list":
                rows = await service.list(include_inactive=args.all)
                if not rows:
                    out("no incidents" if args.all else "no active incidents")
                now = time.time()
                for i in rows:
                    state = "active" if i.is_active(now) else (
                        "cleared" if i.cleared_at is not None else "expired")
                    out(f"{i.id:>4}  {state:<7}  {_fmt_time(i.starts_at)} .. "
                        f"{_fmt_time(i.expires_at)}  {','.join(i.products) or '*':<16} "
                        f"{i.prompt or '-':<24} {i.text}")  # fmt: skip
            else:
                inc = await retry_locked(lambda: service.clear(args.id),
                                         what=f"clearing incident {args.id}")  # fmt: skip
                out(f"incident {inc.id} cleared")
        except IncidentError as exc:
            print(f"incident {args.incident_command}: {exc}", file=sys.stderr)
            return 2
        return 0

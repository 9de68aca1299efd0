"""`ccrouter callback list|cancel` and `ccrouter outbound schedule|list`.

    ccrouter outbound schedule --number 79001234567 --at 2026-05-04T10:00 --target wallet-ru \\
        --message reminders/appointment
    ccrouter outbound list
    ccrouter callback list [--state pending]
    ccrouter callback cancel 17

Safe while the daemon runs: both use the same SQLite database (WAL); the daemon picks new
requests up within `callbacks.poll_s` and a cancelled request can no longer be claimed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from ccrouter.callbacks import model as cb
from ccrouter.callbacks.config import callback_settings
from ccrouter.cli_support import database, run_command, settings_or_none
from ccrouter.config import Settings

STATES = tuple(s.value for s in cb.State)


def parse_at(text: str) -> float:
    """`now`, or an ISO time (`2026-05-04T10:00`, local time unless it has an offset)."""
    if text.strip().lower() == "now":
        return time.time()
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (now, or e.g. 2026-05-04T10:00 or 2026-05-04T10:00+05:00)"
        ) from None


def add_parsers(sub: Any, config_help: str) -> None:
    p = sub.add_parser("callback", help="list or cancel callback requests")
    p.add_argument("--config", type=Path, default=None, help=config_help)
    csub = p.add_subparsers(dest="callback_command", required=True, metavar="ACTION")
    lst = csub.add_parser("list", help="requests (oldest place first)")
    lst.add_argument("--state", action="append", choices=STATES, default=[],
                     help="only these states (repeat; default: all)")  # fmt: skip
    lst.add_argument("--json", action="store_true", help="one JSON object per line")
    c = csub.add_parser("cancel", help="cancel a pending request")
    c.add_argument("id", type=int)
    for leaf in (lst, c):
        leaf.add_argument("--config", type=Path, default=argparse.SUPPRESS, help=config_help)
    p.set_defaults(func=cmd_callback)

    p = sub.add_parser("outbound", help="schedule or list outbound calls (reminders)")
    p.add_argument("--config", type=Path, default=None, help=config_help)
    osub = p.add_subparsers(dest="outbound_command", required=True, metavar="ACTION")
    s = osub.add_parser("schedule", help="call a number at a time, play a message, then queue")
    s.add_argument("--number", required=True, help="the customer's number")
    s.add_argument("--at", type=parse_at, default="now", metavar="TIME",
                   help="when: now (default) or an ISO time, e.g. 2026-05-04T10:00")  # fmt: skip
    s.add_argument("--target", required=True, help="the target whose operators take the call")
    s.add_argument("--message", default="", help="sound played first (default: callbacks.prompt)")
    s.add_argument("--language", default="", help="default: the target's language")
    lst = osub.add_parser("list", help="scheduled outbound calls")
    lst.add_argument("--state", action="append", choices=STATES, default=[])
    lst.add_argument("--json", action="store_true", help="one JSON object per line")
    for leaf in (s, lst):
        leaf.add_argument("--config", type=Path, default=argparse.SUPPRESS, help=config_help)
    p.set_defaults(func=cmd_outbound)


def _settings(args: argparse.Namespace) -> Settings | None:
    return settings_or_none(args.config)


def cmd_callback(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings is None:
        return 2
    command = args.callback_command
    return run_command(_run(settings, args, command), f"callback {command}")


def cmd_outbound(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings is None:
        return 2
    command = "schedule" if args.outbound_command == "schedule" else "outbound-list"
    return run_command(_run(settings, args, command), f"outbound {args.outbound_command}")


def _fmt(at: float | None) -> str:
    return "-" if at is None else datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")


def _print(requests: list[cb.Request], as_json: bool) -> None:
    if not requests and not as_json:
        print("no requests")
    for r in requests:
        if as_json:
            print(json.dumps(asdict(r), ensure_ascii=False))
            continue
        print(f"{r.id:>5}  {r.kind:<8} {r.state:<9} {r.number:<16} {r.target:<14} "
              f"due {_fmt(r.due_at)}  attempts {r.attempts}  abandons {r.abandons}  "
              f"card {r.card or '-'}  {r.reason or ''}".rstrip())  # fmt: skip


async def _run(settings: Settings, args: argparse.Namespace, command: str) -> int:
    from ccrouter.callbacks.store import CallbackStore, OpenRequestExists
    from ccrouter.db.engine import retry_locked

    async with database(settings) as engine:
        store = CallbackStore(engine)
        if command == "list":
            _print(await store.find(args.state), args.json)
        elif command == "outbound-list":
            _print(await store.find(args.state, kind=cb.Kind.OUTBOUND.value), args.json)
        elif command == "cancel":
            r = await retry_locked(lambda: store.cancel(args.id, "cancelled_by_user", time.time()),
                                   what=f"cancelling request {args.id}")  # fmt: skip
            if r is None:
                found = await store.get(args.id)
                why = "no such request" if found is None else f"it is {found.state}"
                print(f"callback cancel: request {args.id} not cancelled: {why}",
                      file=sys.stderr)  # fmt: skip
                return 1
            print(f"request {r.id} cancelled")
        else:
            error = _check_schedule(settings, args)
            if error:
                print(f"outbound schedule: {error}", file=sys.stderr)
                return 2
            t = settings.target(args.target)
            try:
                added = await retry_locked(lambda: store.add(
                    number=args.number.strip(), kind=cb.Kind.OUTBOUND, target=t.name,
                    now=time.time(), place_at=args.at, due_at=args.at,
                    language=args.language or t.language, product=t.product,
                    message=args.message,
                ), what="scheduling the call")  # fmt: skip
            except OpenRequestExists as exc:
                print(f"outbound schedule: {args.number}: {exc}", file=sys.stderr)
                return 1
            print(f"outbound call {added.id} scheduled for {_fmt(args.at)}")
        return 0


def _check_schedule(settings: Settings, args: argparse.Namespace) -> str:
    names = [t.name for t in settings.targets]
    if args.target not in names:
        return f"unknown target {args.target!r}; declared: {', '.join(names)}"
    c = callback_settings(settings)
    policy = cb.Policy(withheld=c.withheld_pattern, valid=c.valid_pattern,
                       do_not_call=frozenset(c.do_not_call), short_abandon_s=0)  # fmt: skip
    why = cb.refusal(args.number, 0, policy)
    if why is not None:
        return f"{args.number!r} cannot be called ({why.value})"
    if args.language and args.language not in settings.languages:
        return f"unknown language {args.language!r}; declared: {', '.join(settings.languages)}"
    return ""

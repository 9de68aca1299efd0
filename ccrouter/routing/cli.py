"""`ccrouter operator login|logout|pause|unpause|skills|list`: operators' state.

    ccrouter operator login op1001
    ccrouter operator pause op1001 --reason lunch
    ccrouter operator skills op1001 uz=100 wallet=80 terminal=0   (0 removes a skill)
    ccrouter operator skills op1001 --reset                       (back to the config's skills)
    ccrouter operator list

Works against a running daemon: the command writes the operator's desired state into the
config's database (SQLite, WAL) with the next version number; the daemon's membership service
polls that version every `routing.state_poll_s` and sends Asterisk the QueueAdd/QueueRemove/
QueuePenalty/QueuePause that make the queues match. With the daemon stopped the state is kept
and applied when it starts.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from ccrouter.cli_support import database, run_command, settings_or_none
from ccrouter.config import Settings


def _level(text: str) -> tuple[str, int]:
    skill, sep, value = text.partition("=")
    if not sep or not skill or not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected skill=level (e.g. uz=90), got {text!r}")
    return skill, int(value)


def add_parser(sub: Any, config_help: str) -> None:
    p = sub.add_parser("operator", help="log operators in/out, pause them, change their skills")
    p.add_argument("--config", type=Path, default=None, help=config_help)
    osub = p.add_subparsers(dest="operator_command", required=True, metavar="ACTION")
    for name, text in (("login", "log in: join the queues the skills allow"),
                       ("logout", "log out: leave every queue"),
                       ("unpause", "take calls again")):  # fmt: skip
        osub.add_parser(name, help=text).add_argument("operator", help="operator id")
    pause = osub.add_parser("pause", help="stop taking calls for a while (stays logged in)")
    pause.add_argument("operator", help="operator id")
    pause.add_argument("--reason", default="", help="shown in Asterisk (QueuePause Reason)")
    skills = osub.add_parser("skills", help="change skill levels (0 removes a skill)")
    skills.add_argument("operator", help="operator id")
    skills.add_argument("levels", nargs="*", type=_level, metavar="SKILL=LEVEL")
    how = skills.add_mutually_exclusive_group()
    how.add_argument("--replace", action="store_true", help="these levels only, drop the rest")
    how.add_argument("--reset", action="store_true", help="back to the config's skills")
    osub.add_parser("list", help="every operator's state and skills")
    p.set_defaults(func=cmd_operator)


def cmd_operator(args: argparse.Namespace) -> int:
    settings = settings_or_none(args.config)
    if settings is None:
        return 2
    if args.operator_command == "skills" and not args.levels and not args.reset:
        print("operator skills: give SKILL=LEVEL pairs or --reset", file=sys.stderr)
        return 2
    return run_command(_run(settings, args), f"operator {args.operator_command}")


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    from ccrouter.routing.state import OperatorError, OperatorService, OperatorStore

    async with database(settings) as engine:
        service = OperatorService(settings, OperatorStore(engine))
        by = f"cli:{getpass.getuser()}"
        cmd = args.operator_command
        try:
            if cmd == "list":
                for op in (await service.states()).values():
                    reason = f" ({op.pause_reason})" if op.pause_reason else ""
                    state = "logged out" if not op.logged_in else (
                        f"paused{reason}" if op.paused else "ready")
                    skills = " ".join(f"{k}={v}" for k, v in sorted(op.skills.items()))
                    print(f"{op.id:<10} {op.interface:<16} {state:<22} {skills}  {op.name}")
                return 0
            if cmd == "login":
                op = await service.login(args.operator, by=by)
            elif cmd == "logout":
                op = await service.logout(args.operator, by=by)
            elif cmd == "pause":
                op = await service.pause(args.operator, args.reason, by=by)
            elif cmd == "unpause":
                op = await service.unpause(args.operator, by=by)
            elif args.reset:
                op = await service.reset_skills(args.operator, by=by)
            else:
                op = await service.set_skills(args.operator, dict(args.levels),
                                              replace_all=args.replace, by=by)  # fmt: skip
        except OperatorError as exc:
            print(f"operator {cmd}: {exc}", file=sys.stderr)
            return 2
        state = "logged out" if not op.logged_in else "paused" if op.paused else "ready"
        skills = " ".join(f"{k}={v}" for k, v in sorted(op.skills.items()))
        print(f"{op.id}: {state}; skills {skills or '(none)'}")
        return 0

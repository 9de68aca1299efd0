"""`ccrouter token create|list|revoke`: API tokens in the config's database.

    ccrouter token create --role supervisor --name wallboard-2nd-floor
    ccrouter token create --role supervisor --team cards-a --name aziz
    ccrouter token create --role viewer --product wallet --name wallet-unit [--personal-data]
    ccrouter token create --role operator --operator op1001 --name dilnoza
    ccrouter token list
    ccrouter token revoke 3

The secret is printed once, at creation; only its SHA-256 is stored. Safe while the daemon
runs (same SQLite database, WAL); a revoked token is refused at its next request.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from ccrouter.cli_support import database, run_command, settings_or_none
from ccrouter.config import Settings
from ccrouter.web.auth import Role, TokenScope, TokenStore, scope_problem


def add_parser(sub: Any, config_help: str) -> None:
    p = sub.add_parser("token", help="create, list or revoke HTTP API tokens")
    p.add_argument("--config", type=Path, default=None, help=config_help)
    tsub = p.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    c = tsub.add_parser("create", help="create a token and print its secret (once)")
    c.add_argument("--role", required=True, choices=[r.value for r in Role])
    c.add_argument("--name", required=True, help="who or what uses it (shown by list)")
    c.add_argument("--operator", default=None, metavar="ID",
                   help="operators[].id from the config (required for --role operator)")
    c.add_argument("--team", action="append", default=[], metavar="NAME",
                   help="supervisor: scope the token to this team (teams[].name; repeatable)")
    c.add_argument("--product", action="append", default=[], metavar="LINE",
                   help="viewer: a product line it sees (repeatable)")
    c.add_argument("--target", action="append", default=[], metavar="TARGET",
                   help="viewer: a target it sees (repeatable)")
    c.add_argument("--personal-data", action="store_true",
                   help="viewer: show callers' numbers, names and e-mails (default: masked)")
    tsub.add_parser("list", help="list tokens (never their secrets)")
    r = tsub.add_parser("revoke", help="revoke a token by its id")
    r.add_argument("id", type=int)
    p.set_defaults(func=cmd_token)


def _check(settings: Settings, args: argparse.Namespace) -> str | None:
    if args.token_command != "create":
        return None
    if not args.name.strip() or len(args.name) > 100:
        return "--name: give 1-100 characters"
    if args.role == Role.OPERATOR.value:
        if not args.operator:
            return "--operator: an operator token needs the operator's id"
        ids = [o.id for o in settings.operators]
        if args.operator not in ids:
            return f"--operator: unknown operator {args.operator!r}; declared: {', '.join(ids)}"
    elif args.operator:
        return f"--operator: only operator tokens are tied to an operator, not {args.role}"
    declared = {"--team": [t.name for t in settings.teams], "--product": list(settings.products),
                "--target": [t.name for t in settings.targets]}  # fmt: skip
    for flag, given in (("--team", args.team), ("--product", args.product),
                        ("--target", args.target)):  # fmt: skip
        for name in given:
            if name not in declared[flag]:
                known = ", ".join(declared[flag]) or "(none)"
                return f"{flag}: unknown {flag[2:]} {name!r}; declared: {known}"
    problem = scope_problem(Role(args.role), args.operator, _scope(args))
    return f"--role {args.role}: {problem}" if problem else None


def _scope(args: argparse.Namespace) -> TokenScope:
    return TokenScope(tuple(dict.fromkeys(args.team)), tuple(dict.fromkeys(args.product)),
                      tuple(dict.fromkeys(args.target)), args.personal_data)  # fmt: skip


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    from ccrouter.db.engine import retry_locked

    async with database(settings) as engine:
        store = TokenStore(engine)
        if args.token_command == "create":
            token, token_id = await retry_locked(
                lambda: store.create(args.name.strip(), Role(args.role), args.operator,
                                     _scope(args)),
                what="creating the token")  # fmt: skip
            scope = _scope(args).describe()
            print(f"token {token_id} ({args.role}{'' if scope == '-' else ', ' + scope}) "
                  "created; it is shown only now:")
            print(token)
            return 0
        if args.token_command == "list":
            for t in await store.list():
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(t.created_at))
                state = "revoked" if t.revoked_at else "active"
                print(f"{t.id}\t{t.role}\t{t.operator or '-'}\t{t.name}\t{when}"
                      f"\t{t.scope.describe()}\t{state}")
            return 0
        if await retry_locked(lambda: store.revoke(args.id), what=f"revoking token {args.id}"):
            print(f"token {args.id} revoked")
            return 0
        print(f"no active token with id {args.id}", file=sys.stderr)
        return 1


def cmd_token(args: argparse.Namespace) -> int:
    settings = settings_or_none(args.config)
    if settings is None:
        return 2
    problem = _check(settings, args)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    return run_command(_run(settings, args), f"token {args.token_command}")

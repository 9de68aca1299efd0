"""`ccrouter doctor --config FILE`: one line per check (ok / warn / fail, with the fix), exit
code 1 when any check failed. The AMI secret comes from CCROUTER_AMI_SECRET as for `run`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from ccrouter.cli_support import settings_or_none


def add_parser(sub: Any, config_help: str) -> None:
    p = sub.add_parser("doctor", help="check a running Asterisk against the config "
                       "(AMI user, filter, channelvars, generated files, FastAGI, devices)")
    p.add_argument("--config", type=Path, default=None, help=config_help)
    p.add_argument("--timeout", type=float, default=5.0, metavar="S",
                   help="seconds to wait for each AMI answer (default 5)")
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    from ccrouter.doctor.checks import Doctor
    from ccrouter.doctor.model import exit_code
    from ccrouter.logs import configure_logging

    path: Path = args.config
    settings = settings_or_none(path)
    if settings is None:
        print(f"{path}: invalid configuration, not checking", file=sys.stderr)
        return 2
    if args.timeout <= 0:
        print(f"--timeout must be > 0, got {args.timeout}", file=sys.stderr)
        return 2
    configure_logging(settings.log.model_copy(update={"level": "warning"}), stream=sys.stderr)
    checks = asyncio.run(Doctor(settings, str(path), args.timeout).run())
    for check in checks:
        print(check.line())
    code = exit_code(checks)
    failed = sum(1 for c in checks if c.status == "fail")
    print(f"{len(checks)} checks, {failed or 'none'} failed")
    return code

"""`ccrouter recordings prune [--dry-run]`: what the daily job deletes (recordings older than
their line's `keep_days`), deleted now or only listed."""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path
from typing import Any

from ccrouter.cli_support import database, run_command, settings_or_none
from ccrouter.recordings.prune import prune
from ccrouter.recordings.store import RecordingStore


def add_parser(sub: Any, config_help: str) -> None:
    p = sub.add_parser("recordings", help="call recordings: prune old ones")
    p.add_argument("--config", type=Path, default=None, help=config_help)
    rsub = p.add_subparsers(dest="recordings_command", required=True, metavar="COMMAND")
    pr = rsub.add_parser("prune", help="delete recordings older than recordings.keep_days")
    pr.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    pr.set_defaults(func=prune_command)


def prune_command(args: argparse.Namespace) -> int:
    settings = settings_or_none(args.config)
    if settings is None:
        return 2

    async def go() -> int:
        async with database(settings) as engine:
            result = await prune(RecordingStore(engine), settings.recordings, now=time.time(),
                                 dry_run=args.dry_run)  # fmt: skip
        verb = "would delete" if result.dry_run else "deleted"
        for st in result.planned:
            when = dt.datetime.fromtimestamp(st.started_at).isoformat(timespec="seconds")
            print(f"{verb} card {st.card} {st.path} ({st.size} bytes, {when}, {st.product or '-'})")
        total = sum(st.size for st in result.planned)
        if result.dry_run:
            print(f"{len(result.planned)} recordings, {total} bytes would be freed")
        else:
            print(f"{result.deleted} recordings deleted, {result.freed} bytes freed")
        return 0

    return run_command(go(), "recordings prune")

"""`ccrouter import`: write a starter config from an existing app_queue set-up.

    ccrouter import --ami 127.0.0.1:5038 --user ccrouter --secret-env CCROUTER_AMI_SECRET \\
        --out ccrouter.yaml
    ccrouter import --queues-conf /etc/asterisk/queues.conf --out ccrouter.yaml

The written file is checked as `ccrouter check` would; exit 0 when it passes, 1 when the
input could not be read or imported (one line saying why), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from ccrouter.config import check_settings
from ccrouter.config.sections import starters
from ccrouter.importer.ami import AmiImportError, read_queues_ami
from ccrouter.importer.model import ImportedQueue, ImportInputError, starter_config
from ccrouter.importer.queues_conf import QueuesConfError, read_queues_conf
from ccrouter.importer.render import render


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, "5038"
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT (port 1-65535), got {text!r}")
    return host, int(port)


def add_parser(sub: Any, config_help: str) -> None:
    p = sub.add_parser("import", help="write a starter config from an existing Asterisk's "
                       "queues (AMI or queues.conf)")  # fmt: skip
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--ami", type=_host_port, metavar="HOST:PORT",
                     help="read QueueStatus from this running Asterisk")
    src.add_argument("--queues-conf", type=Path, nargs="+", metavar="FILE",
                     help="read these queues.conf files instead")
    p.add_argument("--user", default="ccrouter", help="AMI username (default: ccrouter)")
    p.add_argument("--secret-env", default="CCROUTER_AMI_SECRET", metavar="VAR",
                   help="environment variable holding the AMI secret "
                   "(default: CCROUTER_AMI_SECRET)")  # fmt: skip
    p.add_argument("--timeout", type=float, default=10.0, metavar="S",
                   help="AMI connect/answer timeout (default: 10)")
    p.add_argument("--out", type=Path, required=True, metavar="FILE",
                   help="the config file to write")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.set_defaults(func=cmd_import, config=None)


def _read(args: argparse.Namespace) -> tuple[list[ImportedQueue], str, dict[str, Any] | None]:
    if args.queues_conf:
        files = ", ".join(map(str, args.queues_conf))
        return read_queues_conf(list(args.queues_conf)), files, None
    host, port = args.ami
    secret = os.environ.get(args.secret_env)
    if secret is None:
        raise ImportInputError(f"--secret-env {args.secret_env}: the variable is not set")
    queues = asyncio.run(read_queues_ami(host, port, args.user, secret, args.timeout))
    return queues, f"AMI {host}:{port}", {"host": host, "port": port, "username": args.user}


def cmd_import(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.exists() and not args.force:
        print(f"import: {out} exists; pass --force to overwrite it", file=sys.stderr)
        return 1
    try:
        queues, source, ami = _read(args)
        starter = starter_config(queues, ami, source, starters())
    except (AmiImportError, QueuesConfError, ImportInputError) as exc:
        print(f"import: {exc}", file=sys.stderr)
        return 1
    for warning in starter.warnings:
        print(f"import: warning: {warning}", file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(starter), encoding="utf-8")
    data = starter.data
    print(f"wrote {out}: {len(data['targets'])} targets, {len(data['operators'])} operators "
          f"from {source}")  # fmt: skip
    errors = check_settings(out)
    for error in errors:
        print(error, file=sys.stderr)
    if errors:
        print(f"import: {out} does not pass `ccrouter check` (a bug: please report it)",
              file=sys.stderr)  # fmt: skip
        return 1
    print(f"next: ccrouter check {out}; ccrouter dialplan --config {out} --out dialplan/")
    return 0

"""`ccrouter cluster status`: which instance serves which Asterisk node, its term, how long it
has held it and how long its lease has left (from the lease rows; any instance's config)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ccrouter.cli_support import database, run_command, settings_or_none
from ccrouter.cluster.lease import lease_table


def add_parser(sub: Any, config_help: str) -> None:
    p = sub.add_parser("cluster", help="several instances: which one serves which node")
    p.add_argument("--config", type=Path, default=None, help=config_help)
    csub = p.add_subparsers(dest="cluster_command", required=True, metavar="COMMAND")
    st = csub.add_parser("status", help="every node's lease: holder, term, held for, left")
    st.set_defaults(func=status_command)


def status_command(args: argparse.Namespace) -> int:
    settings = settings_or_none(args.config)
    if settings is None:
        return 2

    async def go() -> int:
        async with database(settings) as engine:
            leases = {lease.node: lease for lease in await lease_table(engine)}
        print(f"{'node':<12} {'holder':<12} {'term':>5} {'held_s':>9} {'left_s':>7}")
        unserved = 0
        for node in settings.asterisk.names():
            lease = leases.get(node)
            if lease is None or lease.expires_in_s <= 0:
                unserved += 1
                last = f"(last: {lease.holder}, term {lease.term})" if lease else "(never held)"
                print(f"{node:<12} {'-':<12} {'-':>5} {'-':>9} {'-':>7} nobody serves it {last}")
                continue
            print(f"{node:<12} {lease.holder:<12} {lease.term:>5} {lease.held_s:>9.1f} "
                  f"{lease.expires_in_s:>7.1f}")  # fmt: skip
        return 1 if unserved else 0

    return run_command(go(), "cluster status")

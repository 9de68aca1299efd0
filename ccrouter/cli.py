"""`ccrouter` command line: check a config, generate the Asterisk files, run, demo.

Exit codes: 0 ok; 1 `check` found errors; 2 another command refused an invalid config or bad
arguments (argparse's own convention).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ccrouter.cli_support import CONFIG_ENV, DEFAULT_CONFIG, default_config, settings_or_none
from ccrouter.config import ConfigError, Settings, check_settings, load_settings
from ccrouter.wiring import FEATURE_COMMANDS as _FEATURE_COMMANDS
from ccrouter.wiring import register

register()  # every feature's config section, before any settings are loaded


def _print_errors(errors: Sequence[ConfigError]) -> None:
    for error in errors:
        print(error, file=sys.stderr)


def _settings_or_none(path: Path) -> Settings | None:
    """The settings, or None after printing every error (callers exit 2)."""
    settings = settings_or_none(path)
    if settings is None:
        print(f"{path}: invalid configuration, not starting", file=sys.stderr)
    return settings


def cmd_check(args: argparse.Namespace) -> int:
    path: Path = args.config
    errors = check_settings(path)
    if errors:
        _print_errors(errors)
        return 1
    settings = load_settings(path)
    print(f"{path}: OK ({len(settings.targets)} targets, {len(settings.operators)} operators)")
    return 0


def cmd_dialplan(args: argparse.Namespace) -> int:
    from ccrouter.asterisk_conf import (
        EXTENSIONS_FILE,
        MANAGER_FILE,
        QUEUERULES_FILE,
        QUEUES_FILE,
        extensions_conf,
        manager_conf,
        queuerules_conf,
        queues_conf,
    )

    settings = _settings_or_none(args.config)
    if settings is None:
        return 2
    if args.node is not None:
        names = settings.asterisk.names()
        if args.node not in names:
            print(f"{args.config}: unknown node {args.node!r}; declared: {', '.join(names)}",
                  file=sys.stderr)  # fmt: skip
            return 2
        node = settings.asterisk.model_copy(update={"node": args.node})
        settings = settings.model_copy(update={"asterisk": node})
    try:
        extensions = extensions_conf(settings)
    except ValueError as exc:
        print(f"{args.config}: {exc}", file=sys.stderr)
        return 2
    if args.out is None:
        sys.stdout.write(extensions)
        return 0
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for name, text in (
        (EXTENSIONS_FILE, extensions),
        (MANAGER_FILE, manager_conf(settings.ami.username)),
        (QUEUES_FILE, queues_conf(settings)),
        (QUEUERULES_FILE, queuerules_conf(settings)),
    ):
        (out / name).write_text(text, encoding="utf-8")
        print(f"wrote {out / name}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings_or_none(args.config)
    if settings is None:
        return 2
    os.environ.setdefault("CCROUTER_CONFIG", str(Path(args.config).resolve()))  # admin reload
    if settings.cluster.enabled:  # one instance of several: serve the nodes whose lease it holds
        from ccrouter.cluster.runner import main as cluster_main

        return cluster_main(settings)
    from ccrouter.app import main as app_main

    return app_main(settings)


def cmd_demo(args: argparse.Namespace) -> int:
    # Imported by name: ccrouter.demo (the simulator wiring) is optional at type-check time.
    demo = importlib.import_module("ccrouter.demo")
    demo_main: Callable[[argparse.Namespace], int | None] = demo.main
    return int(demo_main(args) or 0)


def cmd_sim(args: argparse.Namespace) -> int:
    # Imported by name, as the demo: the simulator is wired only by the entry points.
    simrun = importlib.import_module("ccrouter.simrun")
    sim_main: Callable[[argparse.Namespace], int] = simrun.main
    return int(sim_main(args))


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _feature_module(argv: Sequence[str] | None) -> str | None:
    """The module of the feature command about to run: the first argument names it (the top
    level has no option but --help); None for every other command line."""
    args = sys.argv[1:] if argv is None else argv
    found = _FEATURE_COMMANDS.get(args[0]) if args else None
    return found[0] if found is not None else None


def _add_feature_parsers(sub: Any, config_help: str, module_run: str | None) -> None:
    """The full parsers of `module_run` (a module may add several), a help line for every other
    feature command; in the table's order, as `ccrouter --help` lists them."""
    for command, (module, function, text) in _FEATURE_COMMANDS.items():
        if command in sub.choices:
            continue
        if module == module_run:
            getattr(importlib.import_module(module), function)(sub, config_help)
        else:
            sub.add_parser(command, help=text)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ccrouter")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv` (default: sys.argv); of the feature commands' modules only the
    one `argv` runs is imported."""
    parser = argparse.ArgumentParser(
        prog="ccrouter", description="Call routing for Asterisk call centres."
    )
    parser.add_argument("--version", action="version", version=f"ccrouter {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    config_help = f"config file (default: ${CONFIG_ENV} or {DEFAULT_CONFIG})"

    p = sub.add_parser("check", help="check a config file; print file:line: key: message errors")
    p.add_argument("config", nargs="?", type=Path, default=None, metavar="CONFIG", help=config_help)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("dialplan", help="generate the Asterisk dialplan and manager.conf files")
    p.add_argument("--config", type=Path, default=None, help=config_help)
    p.add_argument(
        "--out", type=Path, default=None, metavar="DIR",
        help="write extensions_, manager_, queues_ and queuerules_ccrouter.conf into DIR "
        "(default: print the extensions file)",
    )  # fmt: skip
    p.add_argument("--node", default=None, metavar="NAME",
                   help="with several Asterisk nodes: write the files for this one (its FastAGI "
                        "ports; default: the first of asterisk.nodes)")  # fmt: skip
    p.set_defaults(func=cmd_dialplan)

    p = sub.add_parser("run", help="run ccrouter (AMI, FastAGI, HTTP)")
    p.add_argument("--config", type=Path, default=None, help=config_help)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="run ccrouter against the PBX simulator")
    p.add_argument("--config", type=Path, default=None, help=config_help)
    p.add_argument("--duration", type=_positive, default=None, metavar="S",
                   help="stop after S seconds (default: until Ctrl-C)")  # fmt: skip
    p.add_argument("--rate", type=_positive, default=None, metavar="CALLS_PER_S",
                   help="new calls per second")  # fmt: skip
    p.add_argument("--time-scale", type=_positive, default=None, metavar="X",
                   help="simulated seconds per real second")  # fmt: skip
    p.add_argument("--day", action=argparse.BooleanOptionalAction, default=True,
                   help="traffic shaped like a day, 08:00-20:00 played in the run's duration "
                   "(default 300 s) with the configured business hours; --no-day: a flat "
                   "rate, every line open, until Ctrl-C or --duration")  # fmt: skip
    p.add_argument("--real-hours", action="store_true",
                   help="with --no-day: apply the configured business hours")
    p.add_argument("--keep", action="store_true",
                   help="keep the demo database of the last run (default: a fresh one)")
    p.add_argument("--data", type=Path, default=None, metavar="DIR",
                   help="where the demo's database, log and report go (default: next to the "
                   "configured database)")  # fmt: skip
    p.add_argument("--http-port", type=int, default=None, metavar="PORT",
                   help="the wallboard's port (default: http.port; 0 = any free port)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="the log on the screen too (it always goes to the log file)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("sim", help="run the PBX simulator alone, for `ccrouter run` to talk to")
    p.add_argument("--config", type=Path, default=None, help=config_help)
    p.add_argument("--rate", type=_positive, default=None, metavar="CALLS_PER_S",
                   help="new calls per second (default 0.5)")  # fmt: skip
    p.add_argument("--duration", type=_positive, default=None, metavar="S",
                   help="stop placing calls after S seconds (default: until Ctrl-C)")
    p.add_argument("--time-scale", type=_positive, default=None, metavar="X",
                   help="simulated seconds per real second (default 5)")  # fmt: skip
    p.add_argument("--no-wait", action="store_true",
                   help="place calls at once, without waiting for ccrouter's AMI login")
    p.set_defaults(func=cmd_sim)

    _add_feature_parsers(sub, config_help, _feature_module(argv))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser(argv).parse_args(argv)
    if args.config is None:
        args.config = default_config()
    code: int = args.func(args)
    return code

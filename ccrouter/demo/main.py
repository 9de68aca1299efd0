"""The `ccrouter demo` command: options, logging to a file next to the database (`-v`: also the
screen), Ctrl-C/SIGTERM end the run early; the exit code is 0 when the run completed."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any, TextIO

from ccrouter.app import run
from ccrouter.config import Settings
from ccrouter.demo.session import (
    DEFAULT_RATE,
    DEFAULT_TIME_SCALE,
    Options,
    print_final,
    run_demo,
    write_report,
)
from ccrouter.logs import configure_logging


class _Tee:
    """Log lines to the file and, with -v, to the screen too."""

    def __init__(self, *streams: TextIO) -> None:
        self._streams = streams

    def write(self, text: str) -> int:
        for s in self._streams:
            s.write(text)
        return len(text)

    def flush(self) -> None:
        for s in self._streams:
            s.flush()


def options(args: argparse.Namespace, settings: Settings) -> Options:
    data = getattr(args, "data", None)
    if data is None:  # next to the configured database
        url = settings.database.url
        path = url.split(":///", 1)[1] if ":///" in url else ""
        data = Path(path).parent if path and path != ":memory:" else Path("var")
    return Options(config=Path(args.config), data_dir=Path(data), duration=args.duration,
                   rate=args.rate or DEFAULT_RATE,
                   time_scale=args.time_scale or DEFAULT_TIME_SCALE,
                   day=getattr(args, "day", True), real_hours=getattr(args, "real_hours", False),
                   http_port=getattr(args, "http_port", None),
                   keep=getattr(args, "keep", False))  # fmt: skip


def main(args: argparse.Namespace) -> int:
    from ccrouter.cli_support import settings_or_none

    settings = settings_or_none(Path(args.config))
    if settings is None:
        return 2
    opts = options(args, settings)
    opts.data_dir.mkdir(parents=True, exist_ok=True)
    out = sys.stdout
    with opts.log_path.open("w", encoding="utf-8") as log_file:
        stream: Any = _Tee(log_file, sys.stderr) if getattr(args, "verbose", False) else log_file
        fmt = settings.log.model_copy(update={"format": "console"})
        configure_logging(fmt, stream=stream)

        async def _run() -> int:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            print(f"ccrouter demo: {'a day 08:00-20:00' if opts.day else 'a flat rate'}"
                  f", {opts.rate:g} calls/s on average, calls at {opts.time_scale:g}x"
                  " (Ctrl-C ends it early)", file=out, flush=True)  # fmt: skip
            report, summary = await run_demo(settings, opts, stop, out)
            write_report(report, settings, opts, opts.day, summary)
            print_final(report, summary, opts, out)
            return 0

        return run(_run())

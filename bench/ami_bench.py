"""AMI ingestion: a replayed stream built from the real Asterisk 22 transcripts through ccrouter's
adapter (FastAMIProtocol -> translate -> CallTracker -> card writes queued) vs panoramisk 1.4's own
parser and dispatch (AMIProtocol + Manager with a plain-function callback) and a bare splitter.

The stream is what ccrouter receives from a real Asterisk: the events its AMI `Filter` admits
(`dialplan.AMI_EVENTS`) of the recorded answered and abandoned calls, repeated with fresh
uniqueids, fed in 64 KiB chunks as a socket would deliver them. Each call is first opened by the
route script (`open_routed`), as in production, outside the timed part. Logging is set up as the
daemon's default (`log:` JSON at info level), written to /dev/null: the per-call `call_ended`
line is part of the cost, a terminal's speed is not.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

from ccrouter.dialplan import AMI_EVENTS

FIXTURES = ("ami-queue-answered.txt", "ami-queue-abandoned.txt")
_UID = re.compile(rb"\b1795443\d{3}\.(\d+)")
CHUNK = 64 * 1024


def filtered_blocks(data: bytes) -> list[bytes]:
    wanted = {f"Event: {name}".encode() for name in AMI_EVENTS}
    out = []
    for block in data.split(b"\r\n\r\n"):
        first = block.split(b"\r\n", 1)[0]
        if first in wanted:
            out.append(block + b"\r\n\r\n")
    return out


def build_stream(calls: int) -> tuple[bytes, list[str], int]:
    """(bytes, the ;2 uniqueids to open, events) for `calls` calls of the two recordings."""
    from tests.conftest import fixture_bytes

    templates = [b"".join(filtered_blocks(fixture_bytes(name))) for name in FIXTURES]
    parts, opened = [], []
    for i in range(calls):
        epoch = f"{1_800_000_000 + i}".encode()
        parts.append(_UID.sub(lambda m, e=epoch: e + b"." + m.group(1), templates[i % 2]))  # type: ignore[misc]
        opened.append(f"{1_800_000_000 + i}.{1 if i % 2 == 0 else 5}")
    stream = b"".join(parts)
    return stream, opened, stream.count(b"\r\n\r\n")


def chunks(data: bytes) -> list[bytes]:
    return [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]


@contextlib.contextmanager
def production_logging() -> Iterator[None]:
    """structlog as `configure_logging` sets it up by default, to /dev/null; restored after."""
    import structlog

    from ccrouter.config import LogSettings
    from ccrouter.logs import configure_logging

    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    with open(os.devnull, "w") as devnull:
        configure_logging(LogSettings(), stream=devnull)
        try:
            yield
        finally:
            structlog.configure(**saved)
            root.handlers[:] = handlers
            root.setLevel(level)


def bench_ccrouter(stream: bytes, uniqueids: list[str]) -> tuple[float, int]:
    from ccrouter.calls.model.book import CallBook
    from ccrouter.calls.model.cards import CardWrite, card_number
    from ccrouter.calls.tracker import CallTracker
    from ccrouter.pbx.ami.protocol import FastAMIProtocol
    from ccrouter.routing.model.decide import RouteDecision

    class Sink:
        def __init__(self) -> None:
            self.writes = 0

        def submit(self, write: CardWrite) -> None:
            self.writes += 1

    serials = itertools.count(1)
    sink = Sink()
    tracker = CallTracker(CallBook(new_number=lambda: card_number(next(serials))), sink)
    decision = RouteDecision(target="support-ru", queue="support-ru", product="support",
                             language="ru", priority=0, timeout_s=60)  # fmt: skip
    for uid in uniqueids:
        tracker.open_routed(uniqueid=uid, channel="Local/s@lab-inbound-00000000;2",
                            caller_num="79001234567", caller_name="", dialled="",
                            decision=decision)  # fmt: skip
    proto = FastAMIProtocol()
    proto.responses = {}
    proto.sink = tracker.on_ami_event
    proto.version = "11.0.0"
    proto._buf = b""
    pieces = chunks(stream)
    with production_logging():
        started = time.perf_counter()
        for piece in pieces:
            proto.data_received(piece)
        elapsed = time.perf_counter() - started
    assert tracker.bad_events == 0 and len(tracker.book) == 0, "the replay did not close every call"
    return elapsed, tracker.events_seen


def bench_panoramisk(stream: bytes) -> tuple[float, int]:
    from panoramisk import Manager
    from panoramisk.ami_protocol import AMIProtocol

    seen = [0]

    def on_event(manager: Any, event: Any) -> None:
        seen[0] += 1

    manager = Manager(loop=None)
    manager.register_event("*", on_event)
    proto = AMIProtocol()
    proto.factory = manager
    proto.responses = {}
    proto.version = "11.0.0"
    proto.encoding = "utf8"
    from collections import deque

    proto.queue = deque()
    import logging

    proto.log = logging.getLogger("panoramisk.bench")
    pieces = chunks(stream)
    started = time.perf_counter()
    for piece in pieces:
        proto.data_received(piece)
    return time.perf_counter() - started, seen[0]


def bench_splitter(stream: bytes) -> tuple[float, int]:
    pieces = chunks(stream)
    started = time.perf_counter()
    buf, n = b"", 0
    for piece in pieces:
        blocks = (buf + piece).split(b"\r\n\r\n")
        buf = blocks.pop()
        for block in blocks:
            dict(line.split(b": ", 1) for line in block.split(b"\r\n") if b": " in line)
            n += 1
    return time.perf_counter() - started, n


def measure(calls: int = 4000, rounds: int = 3) -> dict[str, Any]:
    stream, uniqueids, events = build_stream(calls)
    best: dict[str, float] = {}
    runs: dict[str, Callable[[], tuple[float, int]]] = {
        "ccrouter": lambda: bench_ccrouter(stream, uniqueids),
        "panoramisk": lambda: bench_panoramisk(stream),
        "splitter": lambda: bench_splitter(stream),
    }
    for _ in range(rounds):  # interleaved rounds, best of each: the noise floor, not a lucky run
        for name, fn in runs.items():
            elapsed, n = fn()
            assert n == events, (name, n, events)
            best[name] = min(best.get(name, float("inf")), elapsed)
    rates = {k: round(events / v) for k, v in best.items()}
    return {
        "events": events, "calls": calls, "events_per_s": rates,
        "ratio_ccrouter_vs_panoramisk": round(rates["ccrouter"] / rates["panoramisk"], 2),
        "ratio_ccrouter_vs_splitter": round(rates["ccrouter"] / rates["splitter"], 2),
    }  # fmt: skip

"""Recorded AMI streams drive the same tracker as a live connection (tests, tools, benchmarks)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ccrouter.pbx.ami.protocol import AmiMessage, parse_block


def messages(data: bytes) -> Iterator[AmiMessage]:
    """Every message of a recorded AMI byte stream (the banner line is skipped)."""
    for block in data.split(b"\r\n\r\n"):
        if block.strip():
            msg = parse_block(block)
            if msg:
                yield msg


def replay(data: bytes, sink: Callable[[AmiMessage], None]) -> int:
    """Feed every event of a recorded stream to `sink`; returns how many were fed."""
    n = 0
    for msg in messages(data):
        if "Event" in msg:
            sink(msg)
            n += 1
    return n

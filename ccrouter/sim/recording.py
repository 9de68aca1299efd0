"""MixMonitor in the simulator, as app_mixmonitor.c does it and the recorded transcript shows:
`Newexten` (MixMonitor), `VarSet` of MIXMONITOR_FILENAME (the full path), then
`MixMonitorStart` — a bare channel snapshot, no file name; no `MixMonitorStop` at hang-up
(only StopMixMonitor sends one: ccrouter-record runs it for a transferred caller).
With option `b` the file holds audio only once the caller is bridged: the simulator writes a
short real WAV file (8 kHz 16-bit mono, a tone) when the operator answers.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ccrouter import dialplan as dp

from . import events as ev
from .channel import Channel

if TYPE_CHECKING:
    from .core import Core


@dataclass(frozen=True, slots=True)
class SimRecording:
    """What the generated ccrouter-queue records: `directory` (as this "Asterisk" sees it, a
    real writable folder here), the extension, and which queues / product lines (none: all)."""

    directory: str
    ext: str = "wav"
    queues: frozenset[str] = frozenset()
    products: frozenset[str] = frozenset()
    seconds: float = 1.0
    """Length of the WAV file written per answered call."""
    write_directory: str = ""
    """Where the file really goes (default: `directory`), e.g. the folder ccrouter reads."""

    def records(self, queue: str, product: str) -> bool:
        if not self.queues and not self.products:
            return True
        return queue in self.queues or product in self.products

    def path(self, card: str) -> str:
        digits = "".join(c for c in card if c.isdigit())  # ${FILTER(0-9,${CCROUTER_CARD})}
        return os.path.join(self.directory, f"{dp.RECORDING_PREFIX}{digits}.{self.ext}")

    def local(self, path: str) -> str:
        return os.path.join(self.write_directory or self.directory, os.path.basename(path))

    def write_file(self, path: str) -> None:
        """MixMonitor's file of `path` (as Asterisk names it), `seconds` long."""
        write(self.local(path), self.seconds)


def start(core: Core, ch: Channel, path: str, priority: int) -> None:
    """MixMonitor(<path>,b) on `ch`: its three events, in the transcript's order."""
    core.exten(ch, "MixMonitor", f"{path},b", priority)
    ch.vars[dp.VAR_MIXMONITOR_FILENAME] = path
    if core.ami.wants("VarSet"):  # ccrouter needs this one even with noise off
        core.ami.emit("VarSet", ev.DIALPLAN, ev.varset(ch, dp.VAR_MIXMONITOR_FILENAME, path))
    core.emit("MixMonitorStart", ev.CALL, Channel.snap, ch)


def stop(core: Core, ch: Channel, priority: int) -> None:
    """ExecIf(...?StopMixMonitor()) on `ch` (a transferred caller's first card's file):
    `MixMonitorStop`, a bare snapshot (main/manager_channels.c); MIXMONITOR_FILENAME stays."""
    core.exten(ch, "ExecIf", "1?StopMixMonitor()", priority)
    core.emit("MixMonitorStop", ev.CALL, Channel.snap, ch)


def wav_bytes(seconds: float, rate: int = 8000) -> bytes:
    """A 16-bit mono PCM WAV: 44-byte header + a 440 Hz tone."""
    n = max(1, int(seconds * rate))
    frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                      for i in range(n))  # fmt: skip
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(frames), b"WAVE", b"fmt ", 16,
                         1, 1, rate, rate * 2, 2, 16, b"data", len(frames))  # fmt: skip
    return header + frames


def write(path: str, seconds: float) -> None:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(wav_bytes(seconds))
    except OSError:
        pass  # a real MixMonitor logs and goes on

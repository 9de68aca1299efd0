"""Recordings, pure: which calls are recorded, the file name a card's recording gets, where
ccrouter reads it, its content type, who may play it, and what the retention prune deletes.

Plain values in, decisions out (no I/O): the service, the endpoint and the prune job use it.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from ccrouter.dialplan import RECORDING_PREFIX

EXTENSIONS: Final = {"wav": "wav", "gsm": "gsm", "wav49": "WAV"}
"""MixMonitor picks the format from the file's extension; wav49 (GSM in WAV) is `.WAV`."""
CONTENT_TYPES: Final = {"wav": "audio/wav", "WAV": "audio/wav", "gsm": "audio/x-gsm"}
_CARD = re.compile(r"^[0-9]{1,20}$")
_FILE = re.compile(r"^" + re.escape(RECORDING_PREFIX) + r"([0-9]{1,20})\.(wav|gsm|WAV)$")
DAY_S: Final = 86400.0


class RecordingError(ValueError):
    """A value that cannot name a recording; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Policy:
    """`recordings:` as decisions: an empty `targets` and `products` means every call."""

    enabled: bool
    targets: frozenset[str] = frozenset()
    products: frozenset[str] = frozenset()
    keep_days: float = 90.0
    keep_days_by_product: Mapping[str, float] | None = None

    def records(self, target: str, product: str) -> bool:
        if not self.enabled:
            return False
        if not self.targets and not self.products:
            return True
        return target in self.targets or product in self.products

    def keep_days_for(self, product: str) -> float:
        by = self.keep_days_by_product or {}
        return by.get(product, self.keep_days)


def file_name(card: str, fmt: str) -> str:
    """`ccrouter-<card>.<ext>`: unique because card numbers are, and only digits come from
    the call (a card number is ccrouter's, never the caller's)."""
    if not _CARD.match(card):
        raise RecordingError(f"card number {card!r}: digits only (1-20) make a recording name")
    if fmt not in EXTENSIONS:
        raise RecordingError(f"recording format {fmt!r}: one of {', '.join(EXTENSIONS)}")
    return f"{RECORDING_PREFIX}{card}.{EXTENSIONS[fmt]}"


def card_of(path: str) -> str | None:
    """The card number in a recording's file name, or None for a name ccrouter did not give."""
    m = _FILE.match(posixpath.basename(path))
    return m.group(1) if m else None


def content_type(path: str) -> str:
    ext = posixpath.splitext(path)[1].lstrip(".")
    return CONTENT_TYPES.get(ext, "application/octet-stream")


def local_path(asterisk_path: str, directory: str, read_directory: str | None) -> str | None:
    """Where ccrouter reads a file Asterisk wrote as `asterisk_path`: the same name under
    `read_directory`. None when the file is not a ccrouter recording right in `directory`
    (nothing else is ever read: no `..`, no other folder, no other name)."""
    norm = posixpath.normpath(asterisk_path)
    if posixpath.dirname(norm) != posixpath.normpath(directory) or card_of(norm) is None:
        return None
    return posixpath.join(read_directory or directory, posixpath.basename(norm))


@dataclass(frozen=True, slots=True)
class Listener:
    role: str  # operator | supervisor | admin
    interface: str | None


def may_play(who: Listener, card_interface: str | None, operators_hear: str) -> str | None:
    """None when `who` may play the card's recording, else why not."""
    if who.role != "operator":
        return None
    if operators_hear == "all":
        return None
    if operators_hear == "none":
        return "operators may not play recordings (recordings.operators_hear: none)"
    if who.interface and card_interface == who.interface:
        return None
    return "an operator plays only the recordings of their own calls"


@dataclass(frozen=True, slots=True)
class Stored:
    """A recording on disk as the prune sees it."""

    card: str
    path: str
    product: str
    started_at: float
    size: int = 0


@dataclass(frozen=True, slots=True)
class PrunePlan:
    delete: tuple[Stored, ...]
    bytes: int


def prune_plan(stored: Iterable[Stored], policy: Policy, now: float) -> PrunePlan:
    """The recordings older than their line's keep_days at `now`, oldest first."""
    old = sorted((s for s in stored
                  if now - s.started_at > policy.keep_days_for(s.product) * DAY_S),
                 key=lambda s: (s.started_at, s.card))  # fmt: skip
    return PrunePlan(tuple(old), sum(s.size for s in old))


def prune_due(now: dt.datetime, last: dt.datetime | None, hour: int) -> bool:
    """Daily: due once `hour` has come on a day the prune has not run yet."""
    if now.hour < hour:
        return False
    return last is None or last.date() < now.date()


def policy_from(enabled: bool, targets: Sequence[str], products: Sequence[str],
                keep_days: float, keep_days_by_product: Mapping[str, float]) -> Policy:  # fmt: skip
    return Policy(enabled, frozenset(targets), frozenset(products), keep_days,
                  dict(keep_days_by_product))  # fmt: skip

"""Retention: delete recordings older than their line's `keep_days`, mark their cards.

One function for the daily job and `ccrouter recordings prune [--dry-run]`, so both decide
the same way (`model.prune_plan`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from ccrouter.config.recordings import RecordingSettings
from ccrouter.recordings.model import Policy, Stored, local_path, policy_from, prune_due, prune_plan
from ccrouter.recordings.store import RecordingStore

log = structlog.get_logger(__name__)


def policy(s: RecordingSettings) -> Policy:
    return policy_from(s.enabled, s.targets, s.products, s.keep_days, s.keep_days_by_product)


@dataclass(frozen=True, slots=True)
class PruneResult:
    planned: tuple[Stored, ...]
    deleted: int
    freed: int
    dry_run: bool


async def prune(store: RecordingStore, s: RecordingSettings, *, now: float,
                dry_run: bool = False) -> PruneResult:  # fmt: skip
    plan = prune_plan([st for st, _ in await store.on_disk()], policy(s), now)
    deleted = freed = 0
    if not dry_run:
        for st in plan.delete:
            local = local_path(st.path, s.directory, s.read_directory)
            keep = s.keep_days_by_product.get(st.product, s.keep_days)
            reason = f"deleted after {keep:g} days (recordings.keep_days)"
            try:
                if local is None:
                    raise FileNotFoundError(st.path)
                size = os.stat(local).st_size
                os.remove(local)
                freed += size
            except FileNotFoundError:
                reason = f"{reason}; the file was already gone"
            except OSError as exc:
                log.warning("recording_prune_failed", card=st.card, error=exc.strerror)
                continue
            await store.mark(st.card, "deleted", reason, now)
            deleted += 1
        log.info("recordings_pruned", deleted=deleted, freed_bytes=freed)
    return PruneResult(plan.delete, deleted, freed, dry_run)


async def daily(store: RecordingStore, s: RecordingSettings,
                clock: Callable[[], float] = time.time) -> None:  # fmt: skip
    """The daily job: prune once a day from `prune_hour` (local time), checked every
    `prune_check_s`."""
    last: dt.datetime | None = None
    while True:
        now = dt.datetime.fromtimestamp(clock())
        if prune_due(now, last, s.prune_hour):
            await prune(store, s, now=clock())
            last = now
        await asyncio.sleep(s.prune_check_s)

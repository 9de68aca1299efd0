"""Database writes taken off the AMI event path: queued in order, run one at a time by an
owned task, each retried a few times (a database hiccup never loses a write, nor blocks the
events that asked for it)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)

Job = Callable[[], Awaitable[None]]
ATTEMPTS = 5


class WriteQueue:
    def __init__(self, name: str) -> None:
        self._name = name
        self._jobs: asyncio.Queue[Job] = asyncio.Queue()
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(self, job: Job) -> None:
        self._idle.clear()
        self._jobs.put_nowait(job)

    async def drained(self) -> None:
        """Until every write submitted so far is done (tests)."""
        await self._idle.wait()

    async def run(self) -> None:
        while True:
            job = await self._jobs.get()
            for attempt in range(ATTEMPTS):
                try:
                    await job()
                    break
                except Exception:
                    log.exception(f"{self._name}_write_failed", attempt=attempt)
                    await asyncio.sleep(0.2 * (attempt + 1))
            if self._jobs.empty():
                self._idle.set()

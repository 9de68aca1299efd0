"""The card writer: one owner of all card writes, group-committing Core statements.

`submit()` only enqueues (never blocks, never raises). Pending writes are coalesced per card as
they arrive (insert + updates -> one insert with merged fields; updates -> one update; later
values win), so memory grows with the number of distinct cards waiting, not with the number of
writes. `run()` takes what is queued once the oldest write has waited `commit_window_ms` (or at
once when `batch_max` cards wait or someone flushes) and writes it in one transaction: one
executemany INSERT for all new cards, one executemany UPDATE per shape of changed fields
(`card_commit.py`).

On a database error the batch is kept and retried with backoff (`card_write_failed`) while
submissions keep being accepted; nothing is dropped and a card's writes stay in order. A write
that can never succeed (e.g. a value SQLite cannot bind) is isolated to its card and logged as
`card_write_rejected` with its fields, so it cannot stall every other card.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from typing import Final

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.calls.card_commit import PendingCard, commit_batch, is_transient
from ccrouter.calls.model.cards import CardWrite
from ccrouter.calls.numbers import CardNumbers
from ccrouter.config import DatabaseSettings

log = structlog.get_logger(__name__)

MAX_BACKOFF_S: Final = 30.0
DEFAULT_MAX_PENDING: Final = 100_000


class CardWriterStopped(RuntimeError):
    """flush() was waiting when the writer's run() stopped."""


@dataclass(frozen=True, slots=True)
class WriterStats:
    submitted: int  # writes accepted by submit()
    rows_written: int  # card rows inserted or updated
    commits: int
    failures: int  # failed transaction attempts
    rejected: int  # cards whose writes could never be stored (logged card_write_rejected)
    queue_depth: int  # writes submitted but not yet committed
    pending_cards: int  # distinct cards those writes belong to
    last_commit_s: float | None  # duration of the last successful transaction


class CardWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        settings: DatabaseSettings,
        *,
        numbers: CardNumbers | None = None,
        max_pending: int = DEFAULT_MAX_PENDING,
        node: str | None = None,
    ) -> None:
        self._engine = engine
        self._node = node  # stamped on every new card: the Asterisk node it ran on
        self._window = settings.commit_window_ms / 1000.0
        self._batch_max = settings.batch_max
        self._retry = settings.write_retry_s
        self._numbers = numbers
        self._max_pending = max_pending
        self._warn_at = max_pending
        self._pending: dict[str, PendingCard] = {}
        self._inflight = 0  # writes in the batch being written
        self._seq = 0  # sequence of the last submitted write
        self._committed_seq = 0  # every write with seq <= this is committed
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._batch_lock = asyncio.Lock()
        self._stopped = asyncio.Event()
        self._running = False
        self._stop_requested = False
        self._closed = False
        self._last_now = 0.0
        self._rows_written = 0
        self._commits = 0
        self._failures = 0
        self._rejected = 0
        self._last_commit_s: float | None = None
        if numbers is not None:
            numbers.on_due(self._wake.set)

    # ---- hot path -------------------------------------------------------------------------

    def submit(self, write: CardWrite) -> None:
        """Queue one write. Never blocks, never raises (a failure is logged)."""
        try:
            if self._closed:
                log.error("card_write_after_close", card=write.number, fields=dict(write.fields))
                return
            fields = dict(write.fields)
            fields.pop("number", None)  # the key of the write; a card's number never changes
            if write.insert and self._node is not None:
                fields.setdefault("node", self._node)
            self._seq += 1
            entry = self._pending.get(write.number)
            if entry is None:
                self._pending[write.number] = PendingCard(
                    write.number, write.insert, fields, self._seq, 1, time.monotonic()
                )
                size = len(self._pending)
                if size == 1 or size >= self._batch_max:
                    self._wake.set()
                if size >= self._warn_at:
                    log.warning(
                        "card_queue_over_limit", pending_cards=size, limit=self._max_pending
                    )
                    self._warn_at *= 2
            else:
                entry.insert = entry.insert or write.insert
                entry.fields.update(fields)
                entry.writes += 1
        except Exception:
            log.exception("card_submit_failed", card=getattr(write, "number", None))

    # ---- control --------------------------------------------------------------------------

    @property
    def stats(self) -> WriterStats:
        queued = sum(e.writes for e in self._pending.values())
        return WriterStats(
            submitted=self._seq,
            rows_written=self._rows_written,
            commits=self._commits,
            failures=self._failures,
            rejected=self._rejected,
            queue_depth=queued + self._inflight,
            pending_cards=len(self._pending),
            last_commit_s=self._last_commit_s,
        )

    async def run(self) -> None:
        """The writing loop. Runs until cancelled or until close() asks it to stop."""
        if self._running:
            raise RuntimeError("CardWriter.run() is already running")
        self._running = True
        self._stopped.clear()
        try:
            while await self._wait_for_work():
                await self._write_next_batch()
        finally:
            self._running = False
            lost = sum(e.writes for e in self._pending.values()) + self._inflight
            if lost:
                log.error("card_writer_stopped_with_pending", writes=lost)
            for _, future in self._waiters:
                if not future.done():
                    future.set_exception(CardWriterStopped("the card writer stopped"))
            self._waiters.clear()
            self._stopped.set()

    async def flush(self) -> None:
        """Return once every write submitted before this call is committed. Commits at once
        (no window). Without a running run() the queue is written by this call."""
        target = self._seq
        if self._committed_seq >= target:
            return
        if not self._running:
            await self._drain(target)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((target, future))
        self._wake.set()
        await future

    async def close(self) -> None:
        """Flush, stop run() (or keep it from starting), and refuse (log) later submissions.
        Like flush(), it waits as long as the database refuses writes: bound it with
        `asyncio.timeout` at shutdown if needed (run() then logs what was left unwritten)."""
        if self._running:
            await self.flush()
            self._stop_requested = True
            self._wake.set()
            await self._stopped.wait()
        else:
            self._stop_requested = True
            await self._drain(self._seq)
        self._closed = True

    # ---- the loop -------------------------------------------------------------------------

    def _has_work(self) -> bool:
        return bool(self._pending) or (
            self._numbers is not None and self._numbers.reservation_due() is not None
        )

    async def _wait_for_work(self) -> bool:
        """Wait until a batch should be written (True) or the loop should stop (False)."""
        while True:
            if not self._has_work():
                if self._stop_requested:
                    return False
                self._wake.clear()
                await self._wake.wait()
                continue
            if self._waiters or self._stop_requested or len(self._pending) >= self._batch_max:
                return True
            oldest = next(iter(self._pending.values())).since if self._pending else None
            remaining = (oldest or time.monotonic()) + self._window - time.monotonic()
            if remaining <= 0:
                return True
            self._wake.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._wake.wait()
            except TimeoutError:
                return True

    def _take(self) -> list[PendingCard]:
        if len(self._pending) <= self._batch_max:
            batch = list(self._pending.values())
            self._pending = {}
        else:
            batch = list(itertools.islice(self._pending.values(), self._batch_max))
            for entry in batch:
                del self._pending[entry.number]
        return batch

    async def _write_next_batch(self) -> None:
        # One batch at a time, even when flush()/close() write without run(): per-card order.
        async with self._batch_lock:
            if self._has_work():
                batch = self._take()
                self._inflight = sum(e.writes for e in batch)
                await self._write_until_done(batch)
                self._inflight = 0  # left set when cancelled: run() reports them as lost
            if len(self._pending) < self._max_pending:
                self._warn_at = self._max_pending
            self._advance_committed()

    def _advance_committed(self) -> None:
        self._committed_seq = (
            next(iter(self._pending.values())).first_seq - 1 if self._pending else self._seq
        )
        still_waiting = []
        for target, future in self._waiters:
            if target <= self._committed_seq:
                if not future.done():
                    future.set_result(None)
            else:
                still_waiting.append((target, future))
        self._waiters = still_waiting

    async def _drain(self, target: int) -> None:
        while self._committed_seq < target:
            await self._write_next_batch()

    async def _write_until_done(self, batch: list[PendingCard]) -> None:
        attempt = 0
        while True:
            try:
                await self._commit(batch)
                return
            except Exception as error:
                self._failures += 1
                if not is_transient(error):
                    await self._isolate(batch, error)
                    return
                attempt += 1
                delay = min(self._retry * 2 ** (attempt - 1), max(self._retry, MAX_BACKOFF_S))
                log.error(
                    "card_write_failed",
                    error=str(error),
                    error_type=type(error).__name__,
                    cards=len(batch),
                    attempt=attempt,
                    retry_in_s=delay,
                    queued_cards=len(self._pending),
                )
                await asyncio.sleep(delay)

    async def _isolate(self, batch: list[PendingCard], error: Exception) -> None:
        """A permanent error: write card by card so only the bad card is rejected."""
        if len(batch) == 1:
            entry = batch[0]
            self._rejected += 1
            log.error(
                "card_write_rejected",
                card=entry.number,
                insert=entry.insert,
                fields=entry.fields,
                error=str(error),
                error_type=type(error).__name__,
            )
            return
        log.error(
            "card_write_failed",
            error=str(error),
            error_type=type(error).__name__,
            cards=len(batch),
            permanent=True,
            action="writing card by card",
        )
        for entry in batch:
            await self._write_until_done([entry])

    def _now(self) -> float:
        # Strictly increasing, so created_at tells this batch's inserts from older rows.
        now = max(time.time(), self._last_now + 1e-6)
        self._last_now = now
        return now

    async def _commit(self, batch: list[PendingCard]) -> None:
        """One transaction (`commit_batch`), then its statistics and the number reservation."""
        started = time.monotonic()
        now = self._now()
        due = self._numbers.reservation_due() if self._numbers is not None else None
        written, mark = await commit_batch(self._engine, batch, now=now, due=due)
        self._last_commit_s = time.monotonic() - started
        self._commits += 1
        self._rows_written += written
        if due is not None and mark is not None and self._numbers is not None:
            self._numbers.reserved(mark, due.size)

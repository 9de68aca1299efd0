"""Card numbers: handed out synchronously from blocks of serials reserved in the database.

`meta['card_serial_reserved']` is a high-water mark: every serial at or below it may have been
handed out, so a block is only ever taken above it, and numbers are never reused, even after a
crash of any process; a gap is fine. `open()` reserves the first block (after the mark and the
highest card stored). When less than half a block of headroom is left, the allocator asks for
another; the `CardWriter` it is attached to takes it in its next commit, in the same
transaction as the card rows (so a stored card's number is always at or below the stored
mark), with one atomic `UPDATE ... RETURNING` that moves the mark up by a block: every process
on the database — several ccrouter instances on one PostgreSQL — gets blocks no other is ever
given (the row lock orders them), so card numbers are unique across the cluster.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ccrouter.calls.model.cards import card_number, is_valid_card_number
from ccrouter.db.dialect import insert_for
from ccrouter.db.tables import cards, meta

log = structlog.get_logger(__name__)

RESERVED_KEY: Final = "card_serial_reserved"
DEFAULT_BLOCK: Final = 1000
MAX_BLOCK: Final = 64_000
"""The block doubles (up to this) each time numbers outrun the persisted mark."""


@dataclass(frozen=True, slots=True)
class Reservation:
    """A block the allocator asks for: `size` serials above the mark and above `floor` (the
    highest serial it handed out: above the mark only when it ran past its blocks)."""

    size: int
    floor: int = 0


def bump_statement(want: Reservation) -> sa.Update:
    """Move the stored mark to max(mark, floor) + size; RETURNING the new mark, so the block
    is (mark - size + 1 .. mark) and nobody else's."""
    current = sa.cast(meta.c.value, sa.Integer)
    base = sa.case((current >= want.floor, current), else_=sa.literal(want.floor))
    return (
        meta.update()
        .where(meta.c.key == RESERVED_KEY)
        .values(value=sa.cast(base + want.size, sa.Text))
        .returning(meta.c.value)
    )


async def _highest_stored_serial(conn: AsyncConnection) -> int:
    # Longest numbers first, then the largest: one pass over the unique index, at start-up only.
    row = (
        await conn.execute(
            sa.select(cards.c.number)
            .order_by(sa.func.length(cards.c.number).desc(), cards.c.number.desc())
            .limit(1)
        )
    ).first()
    if row is None or not is_valid_card_number(row.number):
        return 0
    return int(row.number[:-1])


class CardNumbers:
    """Hands out card numbers with `next()` (synchronous, never blocks, never touches the DB).

    Create it with `await CardNumbers.open(engine)` and attach it to the `CardWriter`
    (`CardWriter(engine, settings, numbers=numbers)`), which persists further reservations.
    """

    def __init__(self, first_serial: int, reserved_upto: int, block: int = DEFAULT_BLOCK) -> None:
        if block < 2:
            raise ValueError(f"card number block must be >= 2, got {block}")
        if first_serial < 1 or reserved_upto < first_serial - 1:
            raise ValueError(
                f"bad card serial range: first={first_serial} reserved_upto={reserved_upto}"
            )
        self._block = block
        self._next = first_serial
        self._end = reserved_upto  # persisted: serials of this block up to here are ours
        self._blocks: deque[tuple[int, int]] = deque()  # further blocks, persisted, ours
        self._asked = False  # a block is asked for, not yet persisted
        self._last = 0
        self._beyond_logged = False
        self._on_due: Callable[[], None] | None = None

    @classmethod
    async def open(cls, engine: AsyncEngine, *, block: int = DEFAULT_BLOCK) -> CardNumbers:
        """Reserve the first block after everything used before (by any earlier process)."""
        if block < 2:
            raise ValueError(f"card number block must be >= 2, got {block}")
        async with engine.begin() as conn:
            await conn.execute(
                insert_for(conn, meta).values(key=RESERVED_KEY, value="0").on_conflict_do_nothing()
            )
            mark = sa.select(meta.c.value).where(meta.c.key == RESERVED_KEY)
            raw = (await conn.execute(mark)).scalar_one()
            if not raw.strip().isdigit():  # CAST would read it as 0 on SQLite: numbers reused
                raise RuntimeError(f"meta[{RESERVED_KEY!r}] is not an integer: {raw!r}")
            # The same atomic bump as every later block, above cards stored without a
            # reservation too: processes starting together get one block each.
            want = Reservation(block, floor=await _highest_stored_serial(conn))
            upto = int((await conn.execute(bump_statement(want))).scalar_one())
        start = upto - block + 1
        log.info("card_numbers_reserved", first=start, upto=upto)
        return cls(start, upto, block)

    def on_due(self, wake: Callable[[], None] | None) -> None:
        """Called (synchronously) when a new reservation should be persisted soon."""
        self._on_due = wake

    def next(self) -> str:
        if self._next > self._end and self._blocks:
            first, self._end = self._blocks.popleft()
            self._next = max(first, self._next)  # past a block taken late: skip what was used
        serial = self._next
        self._next += 1
        self._last = serial
        if serial > self._end and not self._beyond_logged:
            # The writer could not persist a reservation in time (database down for a while,
            # or calls arriving faster than half a block per commit): keep going rather than
            # fail a call; the next block is taken above these. Ask for more headroom.
            self._beyond_logged = True
            self._block = min(self._block * 2, MAX_BLOCK)
            log.error("card_numbers_beyond_reservation", serial=serial, reserved=self._end,
                      block=self._block)  # fmt: skip
        headroom = self._end - serial + sum(last - first + 1 for first, last in self._blocks)
        if headroom < self._block // 2 and not self._asked:
            self._asked = True
            if self._on_due is not None:
                self._on_due()
        return card_number(serial)

    def reservation_due(self) -> Reservation | None:
        """The block to take in the next commit, or None when nothing is waiting."""
        return Reservation(self._block, self._last) if self._asked else None

    def reserved(self, mark: int, size: int) -> None:
        """The writer committed a block: the stored mark is now `mark`, the block's last."""
        self._asked = False
        first = mark - size + 1
        if first == self._end + 1 and not self._blocks:
            self._end = mark
        else:
            self._blocks.append((first, mark))
        self._beyond_logged = False
        log.debug("card_numbers_reserved", first=first, upto=mark)

    @property
    def issued(self) -> int:
        """How far handed out: the last serial returned by next() (0 before the first)."""
        return self._last

"""Callback requests and attempts in SQLite: every change is committed before it is relied on.

At most one open (pending/dialing) request per number (a partial unique index), so a second
abandon merges atomically (an upsert). A dispatcher claims a request with a conditional UPDATE
(`state = 'pending' AND attempts = n`) and writes the attempt row in the same transaction before
it sends the Originate: two dispatchers never dial the same request, a crash never loses one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.domain.callback import OPEN_STATES, Kind, Request, State
from ccrouter.store.tables import callback_attempts as A
from ccrouter.store.tables import callback_requests as R

_OPEN = sa.text("state IN ('pending', 'dialing')")


class OpenRequestExists(ValueError):
    """A scheduled call for a number that already has an open request."""


@dataclass(frozen=True, slots=True)
class Added:
    id: int
    merged: bool
    """True when an open request existed and this abandon was merged into it."""
    card: str | None
    """The card of the request (for a merge: the first abandoned call's card)."""


@dataclass(frozen=True, slots=True)
class Attempt:
    id: int
    request_id: int
    n: int
    card: str
    action_id: str
    channel_id: str
    target: str
    state: str
    started_at: float


def _request(row: Any) -> Request:
    return Request(
        id=row.id, number=row.number, kind=row.kind, state=row.state, target=row.target,
        place_at=row.place_at, due_at=row.due_at, created_at=row.created_at,
        attempts=row.attempts, abandons=row.abandons, card=row.card, language=row.language,
        product=row.product, message=row.message, reason=row.reason,
    )  # fmt: skip


def _attempt(row: Any) -> Attempt:
    return Attempt(row.id, row.request_id, row.n, row.card, row.action_id, row.channel_id,
                   row.target, row.state, row.started_at)  # fmt: skip


class CallbackStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(
        self, *, number: str, kind: Kind, target: str, now: float, place_at: float,
        due_at: float | None = None, language: str = "", product: str = "",
        card: str | None = None, message: str = "",
    ) -> Added:  # fmt: skip
        """A new request, or (a callback for a number with an open request) a merge into it:
        the earliest place is kept and the abandons are counted."""
        values = dict(
            number=number, kind=kind.value, state=State.PENDING.value, target=target,
            language=language, product=product, card=card, message=message, place_at=place_at,
            due_at=now if due_at is None else due_at, created_at=now, updated_at=now,
            attempts=0, abandons=1,
        )  # fmt: skip
        async with self._engine.begin() as conn:
            if kind is Kind.OUTBOUND:
                open_id = (
                    await conn.execute(sa.select(R.c.id).where(R.c.number == number, _OPEN))
                ).scalar()
                if open_id is not None:
                    raise OpenRequestExists(f"number has an open request (id {open_id})")
            ins = sqlite_insert(R).values(**values)
            stmt = ins.on_conflict_do_update(
                index_elements=[R.c.number], index_where=_OPEN,
                set_={"place_at": sa.func.min(R.c.place_at, ins.excluded.place_at),
                      "abandons": R.c.abandons + 1, "updated_at": now},
            ).returning(R.c.id, R.c.abandons, R.c.card)  # fmt: skip
            row = (await conn.execute(stmt)).one()
        return Added(row.id, row.abandons > 1, row.card)

    async def get(self, request_id: int) -> Request | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(R).where(R.c.id == request_id))).first()
        return None if row is None else _request(row)

    async def find(self, states: Sequence[str] = (), kind: str | None = None) -> list[Request]:
        q = sa.select(R).order_by(R.c.place_at, R.c.id)
        if states:
            q = q.where(R.c.state.in_(states))
        if kind is not None:
            q = q.where(R.c.kind == kind)
        async with self._engine.connect() as conn:
            return [_request(r) for r in (await conn.execute(q)).all()]

    async def pending(self) -> list[Request]:
        return await self.find([State.PENDING.value])

    async def cancel_open(self, number: str, reason: str, now: float) -> list[Request]:
        """Cancel the number's pending request (a dialing one finishes its attempt)."""
        stmt = (
            R.update()
            .where(R.c.number == number, R.c.state == State.PENDING.value)
            .values(state=State.CANCELLED.value, reason=reason, updated_at=now)
            .returning(*R.c)
        )
        async with self._engine.begin() as conn:
            return [_request(r) for r in (await conn.execute(stmt)).all()]

    async def cancel(self, request_id: int, reason: str, now: float) -> Request | None:
        """Cancel one pending request (the CLI); None when it is not pending."""
        stmt = (
            R.update()
            .where(R.c.id == request_id, R.c.state == State.PENDING.value)
            .values(state=State.CANCELLED.value, reason=reason, updated_at=now)
            .returning(*R.c)
        )
        async with self._engine.begin() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else _request(row)

    async def claim(
        self, request: Request, *, card: str, action_id: str, channel_id: str, target: str,
        now: float,
    ) -> Attempt | None:  # fmt: skip
        """pending -> dialing and the attempt row, in one transaction; None if someone else
        claimed it, or it was cancelled, since `request` was read."""
        n = request.attempts + 1
        async with self._engine.begin() as conn:
            res = await conn.execute(
                R.update()
                .where(R.c.id == request.id, R.c.state == State.PENDING.value,
                       R.c.attempts == request.attempts)
                .values(state=State.DIALING.value, attempts=n, updated_at=now)
            )
            if res.rowcount != 1:
                return None
            row = (
                await conn.execute(
                    A.insert()
                    .values(request_id=request.id, n=n, card=card, action_id=action_id,
                            channel_id=channel_id, target=target, state="dialing",
                            started_at=now)
                    .returning(*A.c)
                )
            ).one()
        return _attempt(row)

    async def attempt_answered(self, attempt_id: int) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(A.update().where(A.c.id == attempt_id).values(state="answered"))

    async def finish(
        self, attempt_id: int, result: str, now: float, *, state: State,
        due_at: float | None = None, reason: str | None = None,
    ) -> None:  # fmt: skip
        """The attempt ended with `result`; its request becomes `state` (pending: retry at
        `due_at`)."""
        async with self._engine.begin() as conn:
            req_id = (
                await conn.execute(
                    A.update().where(A.c.id == attempt_id)
                    .values(state=result, ended_at=now).returning(A.c.request_id)
                )
            ).scalar_one()
            values: dict[str, Any] = {"state": state.value, "updated_at": now, "reason": reason}
            if due_at is not None:
                values["due_at"] = due_at
            await conn.execute(R.update().where(R.c.id == req_id).values(**values))

    async def release(self, attempt_id: int, now: float, *, due_at: float) -> None:
        """The attempt ended through no fault of the customer (operator first: the operator
        did not answer): it does not count. Its row goes (its leg's card keeps the story:
        outcome operator_missed) and the request is pending again at `due_at`."""
        async with self._engine.begin() as conn:
            req_id = (
                await conn.execute(
                    A.delete().where(A.c.id == attempt_id).returning(A.c.request_id)
                )
            ).scalar_one()
            await conn.execute(
                R.update().where(R.c.id == req_id)
                .values(state=State.PENDING.value, attempts=R.c.attempts - 1, due_at=due_at,
                        updated_at=now, reason="operator_missed")
            )  # fmt: skip

    async def end(self, request_id: int, state: State, reason: str, now: float) -> bool:
        """A pending request ends without an attempt (expired)."""
        async with self._engine.begin() as conn:
            res = await conn.execute(
                R.update().where(R.c.id == request_id, R.c.state == State.PENDING.value)
                .values(state=state.value, reason=reason, updated_at=now)
            )
        return res.rowcount == 1

    async def open_attempts(self) -> list[tuple[Attempt, Request]]:
        """Attempts left dialing/answered (after a restart: to reconcile)."""
        q = (
            sa.select(A, R.c.number.label("r_number"))
            .join(R, R.c.id == A.c.request_id)
            .where(A.c.state.in_(("dialing", "answered")))
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        out = []
        for row in rows:
            req = await self.get(row.request_id)
            if req is not None:
                out.append((_attempt(row), req))
        return out

    async def attempts(self, request_id: int | None = None) -> list[Attempt]:
        q = sa.select(A).order_by(A.c.id)
        if request_id is not None:
            q = q.where(A.c.request_id == request_id)
        async with self._engine.connect() as conn:
            return [_attempt(r) for r in (await conn.execute(q)).all()]


__all__ = ["OPEN_STATES", "Added", "Attempt", "CallbackStore", "OpenRequestExists"]

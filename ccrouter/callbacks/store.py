"""Callback requests and attempts in the database (SQLite or PostgreSQL): every change is
committed before it is relied on.

At most one open (pending/dialing) request per number (a partial unique index), so a second
abandon merges atomically (an upsert). A dispatcher claims a request with a conditional UPDATE
(`state = 'pending' AND attempts = n`) and writes the attempt row in the same transaction before
it sends the Originate: two dispatchers never dial the same request, a crash never loses one.

The dispatcher's own writes (claim, answered, finish, release: on the path from "operator
free" to the Originate) are plain SQL run whole, BEGIN IMMEDIATE to COMMIT, on a dedicated
sqlite3 connection (`Transactions`) where SQLAlchemy's async layers make five or six thread
hops, each waiting for a turn of a busy event loop and for the GIL. Without a database file
(in-memory) the same functions run inside SQLAlchemy's transaction. So they do on PostgreSQL
(asyncpg is asynchronous already: no thread hop), the `?` numbered `$n`: a claim is the same
conditional UPDATE ... RETURNING and INSERT, committed before the Originate — as one statement
on the raw asyncpg connection (`_CLAIM_PG`), its row taken `FOR UPDATE SKIP LOCKED`, so a
second claimer (another instance) skips a request the first is claiming instead of waiting for
its commit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.callbacks.model import OPEN_STATES, Kind, Request, State
from ccrouter.callbacks.sqlite_tx import Transactions
from ccrouter.callbacks.tables import callback_attempts as A
from ccrouter.callbacks.tables import callback_requests as R
from ccrouter.db.dialect import discard_if_broken, insert_for, least
from ccrouter.db.engine import sqlite_file

_OPEN = sa.text("state IN ('pending', 'dialing')")
T = TypeVar("T")
Query = Callable[[str, Sequence[Any]], list[Any]]
"""Runs one SQL statement (`?` parameters) inside the current transaction; its rows."""


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


@functools.cache
def dollar_params(sql: str) -> str:
    """`?` placeholders numbered as PostgreSQL (asyncpg) spells them: `$1, $2, ...` (the
    statements here hold no `?` inside a literal)."""
    parts = sql.split("?")
    return "".join(p + (f"${i}" if i < len(parts) else "") for i, p in enumerate(parts, 1))


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


_ATTEMPT_COLUMNS = "id, request_id, n, card, action_id, channel_id, target, state, started_at"


def _claim(q: Query, request_id: int, attempts: int, card: str, action_id: str,
           channel_id: str, target: str, now: float,
           node: str | None) -> Attempt | None:  # fmt: skip
    n = attempts + 1
    if not q("UPDATE callback_requests SET state = 'dialing', attempts = ?, updated_at = ? "
             "WHERE id = ? AND state = 'pending' AND attempts = ? RETURNING id",
             (n, now, request_id, attempts)):  # fmt: skip
        return None
    (row,) = q("INSERT INTO callback_attempts (request_id, n, card, action_id, channel_id, "
               "target, state, started_at, node) VALUES (?, ?, ?, ?, ?, ?, 'dialing', ?, ?) "
               f"RETURNING {_ATTEMPT_COLUMNS}",
               (request_id, n, card, action_id, channel_id, target, now, node))  # fmt: skip
    return Attempt(*row)


_CLAIM_PG = (
    "WITH claimed AS (UPDATE callback_requests SET state = 'dialing', attempts = $1, "
    "updated_at = $2 WHERE id = (SELECT id FROM callback_requests WHERE id = $3 "
    "AND state = 'pending' AND attempts = $4 FOR UPDATE SKIP LOCKED) RETURNING id) "
    "INSERT INTO callback_attempts (request_id, n, card, action_id, channel_id, target, state, "
    "started_at, node) SELECT id, $1, $5, $6, $7, $8, 'dialing', $2, $9 FROM claimed "
    f"RETURNING {_ATTEMPT_COLUMNS}")
"""`_claim` on PostgreSQL as one statement (one round trip, committed when it returns), the row
taken `FOR UPDATE SKIP LOCKED`: a request another instance is claiming is skipped at once, not
waited for and then found taken, so instances working down one pending list spread out."""


def _answered(q: Query, attempt_id: int) -> None:
    q("UPDATE callback_attempts SET state = 'answered' WHERE id = ?", (attempt_id,))


def _request_of(rows: list[Any], attempt_id: int) -> int:
    if not rows:
        raise LookupError(f"no callback attempt with id {attempt_id}")
    return int(rows[0][0])


def _finish(q: Query, attempt_id: int, result: str, now: float, state: str,
            due_at: float | None, reason: str | None) -> None:  # fmt: skip
    req_id = _request_of(q("UPDATE callback_attempts SET state = ?, ended_at = ? WHERE id = ? "
                           "RETURNING request_id", (result, now, attempt_id)), attempt_id)
    if due_at is None:
        q("UPDATE callback_requests SET state = ?, updated_at = ?, reason = ? WHERE id = ?",
          (state, now, reason, req_id))
    else:
        q("UPDATE callback_requests SET state = ?, updated_at = ?, reason = ?, due_at = ? "
          "WHERE id = ?", (state, now, reason, due_at, req_id))  # fmt: skip


def _release(q: Query, attempt_id: int, now: float, due_at: float, reason: str) -> None:
    req_id = _request_of(q("DELETE FROM callback_attempts WHERE id = ? RETURNING request_id",
                           (attempt_id,)), attempt_id)  # fmt: skip
    q("UPDATE callback_requests SET state = 'pending', attempts = attempts - 1, due_at = ?, "
      "updated_at = ?, reason = ? WHERE id = ?", (due_at, now, reason, req_id))


class CallbackStore:
    def __init__(self, engine: AsyncEngine, *, node: str | None = None,
                 unnamed: bool = True) -> None:  # fmt: skip
        """`node`: the Asterisk node this store's claims dial on (recorded on each attempt), and
        whose open attempts it reconciles (with, when `unnamed`, those from before attempts
        named a node). Requests are the whole cluster's."""
        self._engine = engine
        self._node = node
        self._unnamed = unnamed
        self._pg = engine.dialect.name == "postgresql"
        path = sqlite_file(engine)
        self._tx = None if path is None else Transactions(path)

    async def close(self) -> None:
        """End the dispatcher's connection, if it was opened (the engine is the caller's to
        dispose)."""
        if self._tx is not None:
            await self._tx.close()

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(query, *args)` as one committed transaction."""
        if self._tx is not None:
            return await self._tx.run(fn, *args)
        numbered = self._engine.dialect.name == "postgresql"

        def in_sqlalchemy(c: sa.Connection) -> T:
            def q(sql: str, params: Sequence[Any]) -> list[Any]:
                if numbered:
                    sql = dollar_params(sql)
                result = c.exec_driver_sql(sql, tuple(params))
                return list(result.all()) if result.returns_rows else []

            return fn(q, *args)

        async with self._engine.begin() as conn:
            return await conn.run_sync(in_sqlalchemy)

    async def add(
        self, *, number: str, kind: Kind, target: str, now: float, place_at: float,
        due_at: float | None = None, language: str = "", product: str = "",
        card: str | None = None, message: str = "",
    ) -> Added:  # fmt: skip
        """A new request, or (a callback for a number with an open request) a merge into it:
        the earliest place is kept and the abandons are counted — once per card: the same
        card's request again changes nothing."""
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
            ins = insert_for(conn, R).values(**values)
            stmt = ins.on_conflict_do_update(
                index_elements=[R.c.number], index_where=_OPEN,
                set_={"place_at": least(R.c.place_at, ins.excluded.place_at),
                      # the same call's abandon again (a cluster's new holder replaying what
                      # its standby heard): not a second abandon
                      "abandons": R.c.abandons + sa.case((R.c.card == ins.excluded.card, 0),
                                                         else_=1),
                      "updated_at": now},
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
        claimed it, or it was cancelled, since `request` was read (on PostgreSQL also while
        another transaction holds its row: it is left to that one, `_CLAIM_SKIP_LOCKED`)."""
        if self._pg:
            async with self._engine.connect() as conn:
                pg: Any = (await conn.get_raw_connection()).driver_connection
                try:
                    row = await pg.fetchrow(_CLAIM_PG, request.attempts + 1, now, request.id,
                                            request.attempts, card, action_id, channel_id,
                                            target, self._node)  # fmt: skip
                except Exception as error:
                    await discard_if_broken(conn, error)
                    raise
            return None if row is None else Attempt(*row)
        return await self._write(_claim, request.id, request.attempts, card, action_id,
                                 channel_id, target, now, self._node)  # fmt: skip

    async def attempt_answered(self, attempt_id: int) -> None:
        await self._write(_answered, attempt_id)

    async def finish(
        self, attempt_id: int, result: str, now: float, *, state: State,
        due_at: float | None = None, reason: str | None = None,
    ) -> None:  # fmt: skip
        """The attempt ended with `result`; its request becomes `state` (pending: retry at
        `due_at`)."""
        await self._write(_finish, attempt_id, result, now, state.value, due_at, reason)

    async def release(self, attempt_id: int, now: float, *, due_at: float,
                      reason: str = "operator_missed") -> None:  # fmt: skip
        """The attempt ended through no fault of the customer (operator first: the operator
        did not answer; Asterisk refused the Originate while restarting: `pbx_restart`): it
        does not count. Its row goes (its leg's card keeps the story: its outcome is `reason`)
        and the request is pending again at `due_at`, with `reason`."""
        await self._write(_release, attempt_id, now, due_at, reason)

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
        if self._node is not None:  # another node's legs are its holder's to reconcile
            mine = A.c.node == self._node
            q = q.where(sa.or_(mine, A.c.node.is_(None)) if self._unnamed else mine)
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


__all__ = ["OPEN_STATES", "Added", "Attempt", "CallbackStore", "OpenRequestExists", "Transactions"]

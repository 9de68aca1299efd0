"""The helpdesk's tables: tickets (the outbox), their history, the caller's mails.

Every change is committed before anyone is told: a ticket requested is in the outbox before
the first attempt, so nothing is lost across a restart; a mail is queued in the same
transaction as the status that causes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ccrouter.db.tables import helpdesk_history, helpdesk_mails, helpdesk_tickets
from ccrouter.helpdesk.model import Status, idempotency_key

T, H, M = helpdesk_tickets.c, helpdesk_history.c, helpdesk_mails.c


@dataclass(frozen=True, slots=True)
class Ticket:
    id: int
    card: str
    idempotency_key: str
    status: Status
    payload: dict[str, Any]
    ticket_id: str | None
    url: str | None
    attempts: int
    next_at: float | None
    last_error: str | None
    created_by: str
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class QueuedMail:
    id: int
    ticket: int
    kind: str
    recipient: str
    language: str
    state: str
    attempts: int


def _ticket(r: Any) -> Ticket:
    return Ticket(r.id, r.card, r.idempotency_key, Status(r.status), r.payload, r.ticket_id,
                  r.url, r.attempts, r.next_at, r.last_error, r.created_by, r.created_at,
                  r.updated_at)  # fmt: skip


async def _history(conn: AsyncConnection, ticket: int, at: float, event: str,
                   status: Status | None, detail: str = "") -> None:  # fmt: skip
    await conn.execute(sa.insert(helpdesk_history).values(
        ticket=ticket, at=at, event=event, status=status.value if status else None,
        detail=detail[:2000]))  # fmt: skip


class HelpdeskStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def request(self, card: str, payload: dict[str, Any], *, by: str, now: float) -> Ticket:
        """A new pending ticket, due now; its idempotency key goes into `payload`."""
        key = idempotency_key(card, uuid.uuid4().hex[:16])
        body = {**payload, "idempotency_key": key}
        async with self._engine.begin() as conn:
            res = await conn.execute(sa.insert(helpdesk_tickets).values(
                card=card, idempotency_key=key, status=Status.PENDING.value, payload=body,
                next_at=now, created_by=by, created_at=now, updated_at=now))  # fmt: skip
            tid = int(res.inserted_primary_key[0])  # type: ignore[index]
            await _history(conn, tid, now, "requested", Status.PENDING, f"by {by}")
        found = await self.get(tid)
        assert found is not None
        return found

    async def get(self, ticket: int) -> Ticket | None:
        async with self._engine.connect() as conn:
            r = (await conn.execute(sa.select(helpdesk_tickets).where(T.id == ticket))).first()
        return _ticket(r) if r else None

    async def by_ticket_id(self, ticket_id: str) -> Ticket | None:
        q = sa.select(helpdesk_tickets).where(T.ticket_id == ticket_id).order_by(T.id.desc())
        async with self._engine.connect() as conn:
            r = (await conn.execute(q.limit(1))).first()
        return _ticket(r) if r else None

    async def for_card(self, card: str) -> list[Ticket]:
        q = sa.select(helpdesk_tickets).where(T.card == card).order_by(T.id)
        async with self._engine.connect() as conn:
            return [_ticket(r) for r in (await conn.execute(q)).all()]

    async def history(self, tickets: Sequence[int]) -> list[dict[str, Any]]:
        q = (sa.select(helpdesk_history).where(H.ticket.in_(list(tickets)))
             .order_by(H.at, H.id))  # fmt: skip
        async with self._engine.connect() as conn:
            return [dict(r._mapping) for r in (await conn.execute(q)).all()]

    async def due(self, now: float, limit: int = 50) -> list[Ticket]:
        q = (sa.select(helpdesk_tickets)
             .where(T.status == Status.PENDING.value, T.next_at <= now)
             .order_by(T.next_at, T.id).limit(limit))  # fmt: skip
        async with self._engine.connect() as conn:
            return [_ticket(r) for r in (await conn.execute(q)).all()]

    async def next_due(self) -> float | None:
        """When the earliest pending ticket or mail is due (None: nothing waits)."""
        qt = sa.select(sa.func.min(T.next_at)).where(T.status == Status.PENDING.value)
        qm = sa.select(sa.func.min(M.next_at)).where(M.state == "pending")
        async with self._engine.connect() as conn:
            found = [(await conn.execute(q)).scalar() for q in (qt, qm)]
        times = [float(t) for t in found if t is not None]
        return min(times) if times else None

    async def attempt_failed(self, ticket: int, error: str, *, next_at: float | None,
                             now: float) -> None:  # fmt: skip
        """One attempt failed: retried at `next_at`, or failed for good when it is None."""
        status = Status.PENDING if next_at is not None else Status.FAILED
        async with self._engine.begin() as conn:
            await conn.execute(sa.update(helpdesk_tickets).where(T.id == ticket).values(
                attempts=T.attempts + 1, next_at=next_at, last_error=error[:500],
                status=status.value, updated_at=now))  # fmt: skip
            await _history(conn, ticket, now, "attempt_failed" if next_at else "failed",
                           status, error)  # fmt: skip

    async def created(self, ticket: int, ticket_id: str, url: str | None, *, now: float,
                      mail_to: tuple[str, str] | None) -> None:  # fmt: skip
        """Created in the helpdesk; `mail_to` (recipient, language): queue the caller's mail."""
        async with self._engine.begin() as conn:
            await conn.execute(sa.update(helpdesk_tickets).where(T.id == ticket).values(
                attempts=T.attempts + 1, next_at=None, last_error=None, ticket_id=ticket_id,
                url=url, status=Status.OPEN.value, updated_at=now))  # fmt: skip
            await _history(conn, ticket, now, "created", Status.OPEN, f"{ticket_id} {url or ''}")
            if mail_to:
                await self._queue_mail(conn, ticket, "created", mail_to, now)

    async def set_status(self, ticket: int, status: Status, comment: str, *, now: float,
                         mail_to: tuple[str, str] | None) -> None:  # fmt: skip
        async with self._engine.begin() as conn:
            await conn.execute(sa.update(helpdesk_tickets).where(T.id == ticket).values(
                status=status.value, updated_at=now))  # fmt: skip
            await _history(conn, ticket, now, "status", status, comment)
            if mail_to and status is Status.RESOLVED:
                await self._queue_mail(conn, ticket, "resolved", mail_to, now)

    async def note(self, ticket: int, event: str, detail: str, *, now: float) -> None:
        async with self._engine.begin() as conn:
            await _history(conn, ticket, now, event, None, detail)

    @staticmethod
    async def _queue_mail(conn: AsyncConnection, ticket: int, kind: str,
                          mail_to: tuple[str, str], now: float) -> None:  # fmt: skip
        exists = sa.select(M.id).where(M.ticket == ticket, M.kind == kind)
        if (await conn.execute(exists)).first() is not None:
            return  # one mail per ticket and kind (a re-sent "resolved" never mails twice)
        await conn.execute(sa.insert(helpdesk_mails).values(
            ticket=ticket, kind=kind, recipient=mail_to[0], language=mail_to[1],
            state="pending", next_at=now, created_at=now))  # fmt: skip

    async def due_mails(self, now: float, limit: int = 50) -> list[QueuedMail]:
        q = (sa.select(helpdesk_mails).where(M.state == "pending", M.next_at <= now)
             .order_by(M.next_at, M.id).limit(limit))  # fmt: skip
        async with self._engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return [QueuedMail(r.id, r.ticket, r.kind, r.recipient, r.language, r.state, r.attempts)
                for r in rows]  # fmt: skip

    async def mail_done(self, mail: QueuedMail, *, now: float, error: str | None,
                        next_at: float | None, message_id: str | None = None) -> None:  # fmt: skip
        """Sent (error None), retried at `next_at`, or failed for good (both None... error)."""
        if error is None:
            state, event, detail = "sent", f"mail_{mail.kind}_sent", mail.language
        elif next_at is not None:
            state, event, detail = "pending", f"mail_{mail.kind}_retry", error
        else:
            state, event, detail = "failed", f"mail_{mail.kind}_failed", error
        async with self._engine.begin() as conn:
            await conn.execute(sa.update(helpdesk_mails).where(M.id == mail.id).values(
                state=state, attempts=M.attempts + 1, next_at=next_at,
                last_error=error[:500] if error else None, message_id=message_id,
                sent_at=now if error is None else None))  # fmt: skip
            await _history(conn, mail.ticket, now, event, None, detail)

    async def mails(self, ticket: int) -> list[dict[str, Any]]:
        q = sa.select(helpdesk_mails).where(M.ticket == ticket).order_by(M.id)
        async with self._engine.connect() as conn:
            return [dict(r._mapping) for r in (await conn.execute(q)).all()]

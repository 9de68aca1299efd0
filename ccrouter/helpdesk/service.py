"""The helpdesk service: tickets requested from a card, the outbox worker that creates them
and mails the caller, and the status events the helpdesk sends back.

The worker looks at the outbox when woken (a new ticket, a status event) and every
`helpdesk.poll_s`; a pending ticket is tried with the connector until the helpdesk takes it
(retries back off up to `backoff_max_s`; a 4xx other than 408/429 fails it). Every outcome is
committed to the store and mirrored onto the card (`ticket_id`, `ticket_url`,
`ticket_status`) through the card writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from ccrouter.calls.model.cards import CardWrite
from ccrouter.config import Settings
from ccrouter.helpdesk import mailer
from ccrouter.helpdesk.connector import JsonWebhook, Refused, Retry
from ccrouter.helpdesk.model import Status, StatusEvent, backoff, pick_language, render_mail
from ccrouter.helpdesk.model import request_body as make_body
from ccrouter.helpdesk.store import HelpdeskStore, QueuedMail, Ticket

log = structlog.get_logger(__name__)


class Cards(Protocol):
    def submit(self, write: CardWrite) -> None: ...

    async def flush(self) -> None: ...


CardLookup = Callable[[str], Any]
"""number -> awaitable of the card as a dict, or None."""


class NotCreated(Exception):
    """A status event for a ticket ccrouter does not know."""


class HelpdeskService:
    def __init__(self, settings: Settings, store: HelpdeskStore, cards: Cards,
                 card: CardLookup, connector: JsonWebhook, *,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self._s, self.store, self._cards, self._card = settings, store, cards, card
        self._connector, self._clock = connector, clock
        self._wake = asyncio.Event()

    def reconfigure(self, settings: Settings) -> None:
        """Templates, SMTP and backoff from a config reload (the URL and secret need a
        restart: the connector is built at start)."""
        self._s = settings

    async def request(self, card: dict[str, Any], *, summary: str, by: str) -> Ticket:
        """Keep a new ticket for `card` in the outbox (committed) and wake the worker."""
        body = make_body(card, "", summary=summary, requested_by=by)
        ticket = await self.store.request(card["number"], body, by=by, now=self._clock())
        self._mirror(ticket.card, Status.PENDING, None, None)
        log.info("ticket_requested", card=ticket.card, ticket=ticket.id, by=by)
        self._wake.set()
        return ticket

    def _mirror(self, card: str, status: Status, ticket_id: str | None,
                url: str | None) -> None:  # fmt: skip
        fields: dict[str, Any] = {"ticket_status": status.value}
        if ticket_id is not None:
            fields |= {"ticket_id": ticket_id, "ticket_url": url}
        self._cards.submit(CardWrite(card, fields))

    async def _mail_to(self, card_number: str) -> tuple[str, str] | None:
        m = self._s.mail
        if not m.host:
            return None
        await self._cards.flush()
        card = await self._card(card_number)
        if not card or not card.get("caller_email"):
            return None
        return card["caller_email"], pick_language(m.templates, card.get("language"),
                                                   m.default_language)  # fmt: skip

    async def attempt(self, t: Ticket) -> None:
        h = self._s.helpdesk
        outcome = await self._connector.create(t.idempotency_key, t.payload)
        now = self._clock()
        if isinstance(outcome, Retry | Refused):
            retry = isinstance(outcome, Retry)
            nxt = now + backoff(t.attempts + 1, h.backoff_s, h.backoff_max_s) if retry else None
            await self.store.attempt_failed(t.id, outcome.error, next_at=nxt, now=now)
            log.warning("ticket_attempt_failed", card=t.card, ticket=t.id,
                        attempt=t.attempts + 1, error=outcome.error, retry_at=nxt)  # fmt: skip
            if not retry:
                self._mirror(t.card, Status.FAILED, None, None)
            return
        mail_to = await self._mail_to(t.card)
        await self.store.created(t.id, outcome.ticket_id, outcome.url, now=now, mail_to=mail_to)
        self._mirror(t.card, Status.OPEN, outcome.ticket_id, outcome.url)
        log.info("ticket_created", card=t.card, ticket=t.id, ticket_id=outcome.ticket_id,
                 attempt=t.attempts + 1)  # fmt: skip

    async def on_event(self, ev: StatusEvent) -> Ticket:
        """Apply a status event; raises NotCreated for an unknown ticket id. A duplicate
        delivery (same status) is recorded in nothing and changes nothing."""
        t = await self.store.by_ticket_id(ev.ticket_id)
        if t is None:
            raise NotCreated(ev.ticket_id)
        if t.status is not ev.status:
            mail_to = await self._mail_to(t.card)
            await self.store.set_status(t.id, ev.status, ev.comment, now=self._clock(),
                                        mail_to=mail_to)  # fmt: skip
            self._mirror(t.card, ev.status, t.ticket_id, t.url)
            log.info("ticket_status", card=t.card, ticket=t.id, status=ev.status.value)
            self._wake.set()
        found = await self.store.get(t.id)
        assert found is not None
        return found

    async def send_mail(self, m: QueuedMail) -> None:
        s = self._s.mail
        t = await self.store.get(m.ticket)
        if t is None or not s.host:
            return
        card = await self._card(t.card) or {}
        values = {"ticket_id": t.ticket_id or "", "ticket_url": t.url or "", "card": t.card,
                  "topic": card.get("topic") or "", "status": t.status.value}  # fmt: skip
        lang = pick_language(s.templates, m.language, s.default_language)
        mail = render_mail(s.templates, m.kind, lang, values)
        now = self._clock
        try:
            mid = await mailer.send(s, mail, m.recipient)
        except mailer.MailError as exc:
            more = m.attempts + 1 < s.attempts
            nxt = now() + backoff(m.attempts + 1, s.backoff_s, s.backoff_max_s) if more else None
            await self.store.mail_done(m, now=now(), error=str(exc), next_at=nxt)
            log.warning("ticket_mail_failed", card=t.card, kind=m.kind, error=str(exc),
                        retry_at=nxt)  # fmt: skip
            return
        await self.store.mail_done(m, now=now(), error=None, next_at=None, message_id=mid)
        log.info("ticket_mail_sent", card=t.card, kind=m.kind, language=lang)

    async def run_once(self) -> None:
        now = self._clock()
        for t in await self.store.due(now):
            await self.attempt(t)
        for m in await self.store.due_mails(self._clock()):
            await self.send_mail(m)

    async def run(self) -> None:
        """Work the outbox forever (a failing round is logged and retried)."""
        try:
            while True:
                self._wake.clear()
                wait = self._s.helpdesk.poll_s
                try:
                    await self.run_once()
                    nxt = await self.store.next_due()
                    if nxt is not None:
                        wait = min(wait, max(0.0, nxt - self._clock()))
                except Exception:
                    log.exception("helpdesk_round_failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
        finally:
            await self._connector.close()

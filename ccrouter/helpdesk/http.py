"""The helpdesk's endpoints: a ticket from a card, a card's tickets with their history, and
the helpdesk's signed status webhook (`POST /api/v1/helpdesk/events`: no token, the body's
HMAC-SHA256 in the signature header, with the same secret ccrouter signs its requests)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import Field

from ccrouter.helpdesk.model import BadAnswer, parse_event, verify
from ccrouter.helpdesk.service import HelpdeskService, NotCreated
from ccrouter.helpdesk.store import Ticket
from ccrouter.web.api import (
    ALL_ROLES,
    MAX_BODY,
    TEXT_PATTERN,
    Call,
    Endpoint,
    Input,
    dumps,
    error_response,
)
from ccrouter.web.cards import own_card
from ccrouter.web.context import WebContext

if TYPE_CHECKING:
    from ccrouter.runtime import Daemon

EVENTS_PATH = "/api/v1/helpdesk/events"


class TicketBody(Input):
    summary: str = Field(default="", max_length=500, pattern=TEXT_PATTERN,
                         description="what the second line should do (default: the topic)")


def ticket_out(t: Ticket) -> dict[str, Any]:
    return {"id": t.id, "card": t.card, "status": t.status.value, "ticket_id": t.ticket_id,
            "url": t.url, "attempts": t.attempts, "next_attempt_at": t.next_at,
            "last_error": t.last_error, "created_by": t.created_by,
            "created_at": t.created_at, "updated_at": t.updated_at,
            "idempotency_key": t.idempotency_key}  # fmt: skip


def endpoints(ctx: WebContext, service: HelpdeskService) -> list[Endpoint]:
    async def create(call: Call) -> Any:
        card = await own_card(ctx, call)
        body: TicketBody = call.body
        summary = body.summary or card.get("topic") or ""
        t = await service.request(card, summary=summary, by=call.who.name)
        return web.Response(text=dumps(ticket_out(t)), status=202,
                            content_type="application/json")  # fmt: skip

    async def tickets(call: Call) -> Any:
        card = await own_card(ctx, call)
        found = await service.store.for_card(card["number"])
        history = await service.store.history([t.id for t in found])
        out = []
        for t in found:
            item = ticket_out(t)
            item["history"] = [h for h in history if h["ticket"] == t.id]
            item["mails"] = [{k: m[k] for k in ("kind", "recipient", "language", "state",
                                                 "attempts", "sent_at", "last_error")}
                             for m in await service.store.mails(t.id)]  # fmt: skip
            out.append(item)
        return {"card": card["number"], "tickets": out}

    num = {"number": "card number"}
    return [
        Endpoint("POST", "/api/v1/cards/{number}/tickets", "Create a second-line ticket from "
                 "the card (202: kept and sent; retried while the helpdesk is down)", create,
                 ALL_ROLES, body=TicketBody, path_params=num),
        Endpoint("GET", "/api/v1/cards/{number}/tickets", "The card's tickets, their history "
                 "and the caller's mails", tickets, ALL_ROLES, path_params=num),
    ]


def events_handler(service: HelpdeskService, secret: str, header: str) -> Any:
    async def handle(request: web.Request) -> web.Response:
        raw = await request.content.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            return error_response(413, f"body larger than {MAX_BODY} bytes", "body")
        if not verify(secret, raw, request.headers.get(header)):
            why = "missing" if header not in request.headers else "does not match the body"
            return error_response(401, f"{header}: signature {why}", header)
        try:
            ev = parse_event(json.loads(raw.decode("utf-8")))
        except (UnicodeDecodeError, ValueError) as exc:  # BadAnswer too
            msg = str(exc) if isinstance(exc, BadAnswer) else f"body: not valid JSON ({exc})"
            return error_response(400, msg, msg.partition(":")[0])
        try:
            t = await service.on_event(ev)
        except NotCreated:
            return error_response(404, f"ticket_id: no ticket {ev.ticket_id!r}", "ticket_id")
        return web.json_response({"ok": True, "card": t.card, "status": t.status.value})

    return handle


async def site(daemon: Daemon, ctx: WebContext) -> list[Endpoint]:
    service = getattr(daemon, "helpdesk", None)
    if not isinstance(service, HelpdeskService):
        return []
    ctx.reload_hooks.append(service.reconfigure)
    h = ctx.settings.helpdesk
    ctx.self_authenticated.append((
        "POST", EVENTS_PATH, "Helpdesk status webhook (signed: HMAC-SHA256 of the body in "
        f"{h.signature_header}, no token)", events_handler(service, h.secret,
                                                          h.signature_header)))  # fmt: skip
    return endpoints(ctx, service)

"""Cards: search with paging, one card with its linked cards, topic/resolution/notes edits.

Operators see and edit only the cards of calls they took (card `interface` = theirs), team
supervisors the cards their teams' operators took, viewers (read-only) the cards of their
lines (`ccrouter.web.scope`); an edit goes through the card writer like every other card
write, then is read back. The first edit that leaves both topic and resolution filled stamps
`completed_at` (after-call work: the KPIs compare it with the call's end).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import Field, model_validator

from ccrouter.calls.model.cards import LINK_FIELDS, CardWrite, Outcome
from ccrouter.db.tables import cards
from ccrouter.web.api import (
    ALL_ROLES,
    READERS,
    ApiError,
    Call,
    Endpoint,
    Input,
    Scoping,
    bad_request,
)
from ccrouter.web.auth import Role
from ccrouter.web.context import WebContext
from ccrouter.web.scope import card_conditions, card_view, may_act_on

_TEXT = r"^[^\x00]*$"
_EMAIL = r"^$|^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$"
"""One address (user@host.tld), or empty to clear it."""
TicketStatus = Literal["pending", "open", "in_progress", "resolved", "failed"]


class CardQuery(Input):
    number: str | None = Field(default=None, pattern=r"^\d{1,20}$", description="card number")
    caller: str | None = Field(default=None, min_length=1, max_length=40,
                               description="caller's number (exact)")
    operator: str | None = Field(default=None, min_length=1, max_length=100,
                                 description="operator id (config operators[].id)")
    queue: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,80}$")
    outcome: Outcome | None = None
    ticket_status: TicketStatus | None = Field(
        default=None, description="the latest second-line ticket's status")
    topic: str | None = Field(default=None, min_length=1, max_length=200, pattern=_TEXT,
                              description="substring of the topic (case-insensitive)")
    from_: dt.datetime | None = Field(default=None, alias="from",
                                      description="started at or after (ISO 8601 or epoch s)")
    to: dt.datetime | None = Field(default=None, description="started before")
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=10_000_000)


class CardPatch(Input):
    topic: str | None = Field(default=None, max_length=200, pattern=_TEXT)
    resolution: str | None = Field(default=None, max_length=200, pattern=_TEXT)
    notes: str | None = Field(default=None, max_length=4000, pattern=_TEXT)
    caller_email: str | None = Field(default=None, max_length=254, pattern=_EMAIL,
                                     description="the caller's e-mail (ticket mails)")

    @model_validator(mode="after")
    def _something(self) -> CardPatch:
        if not self.model_fields_set:
            raise ValueError("give at least one of topic, resolution, notes, caller_email")
        return self


def _search(ctx: WebContext, call: Call) -> tuple[list[Any], Any]:
    q: CardQuery = call.query
    c = cards.c
    where: list[Any] = card_conditions(call.who)
    if q.number:
        where.append(c.number == q.number)
    if q.caller:
        where.append(c.caller_num == q.caller)
    if q.operator:
        op = ctx.operator(q.operator)
        if op is None:
            raise bad_request("operator", f"operator: unknown operator {q.operator!r}")
        where.append(c.interface == op.interface)
    if q.queue:
        where.append(c.queue == q.queue)
    if q.outcome:
        where.append(c.outcome == q.outcome.value)
    if q.ticket_status:
        where.append(c.ticket_status == q.ticket_status)
    if q.topic:
        escaped = q.topic.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(c.topic.ilike(f"%{escaped}%", escape="\\"))
    start = ctx.to_epoch(q.from_) if q.from_ else None
    end = ctx.to_epoch(q.to) if q.to else None
    if start is not None and end is not None and end <= start:
        raise bad_request("to", "to: must be after from")
    if start is not None:
        where.append(c.started_at >= start)
    if end is not None:
        where.append(c.started_at < end)
    return where, q


async def search_cards(ctx: WebContext, call: Call) -> dict[str, Any]:
    where, q = _search(ctx, call)
    c = cards.c
    page = (
        sa.select(cards).where(*where)
        .order_by(c.started_at.desc(), c.id.desc()).limit(q.limit).offset(q.offset)
    )
    async with ctx.app.engine.connect() as conn:
        total = (await conn.execute(sa.select(sa.func.count()).select_from(cards).where(*where)))
        n = int(total.scalar_one())
        rows = (await conn.execute(page)).all()
    items = [card_view(call.who, dict(r._mapping)) for r in rows]
    nxt = q.offset + len(items)
    return {"items": items, "total": n, "limit": q.limit, "offset": q.offset,
            "next_offset": nxt if nxt < n else None}


def _number(call: Call) -> str:
    number = call.path["number"]
    if not number.isascii() or not number.isdigit() or len(number) > 20:
        raise bad_request("number", "number: a card number is digits only")
    return number


async def own_card(ctx: WebContext, call: Call) -> dict[str, Any]:
    """The card of the path's `{number}` (404), one of the operator's own calls (403), in a
    scoped token's scope (404, as for no card)."""
    await ctx.app.writer.flush()
    card = await ctx.app.store.get(_number(call))
    if card is None:
        raise ApiError(404, f"no card {call.path['number']}")
    if not may_act_on(call.who, card=card):
        if call.who.role is Role.OPERATOR:
            raise ApiError(403, "operators see only the cards of their own calls")
        raise ApiError(404, f"no card {call.path['number']}")
    return card


async def linked_cards(ctx: WebContext, card: dict[str, Any]) -> list[dict[str, Any]]:
    """Cards this one points at (its `LINK_FIELDS`: repeat_of, transfer_of, a feature's) and
    cards pointing at it."""
    c = cards.c
    number = card["number"]
    refs = [v for v in (card.get(f) for f in LINK_FIELDS) if v]
    cond = sa.or_(*(c[f] == number for f in LINK_FIELDS), c.number.in_(refs))
    query = sa.select(cards).where(cond, c.number != number).order_by(c.started_at, c.id)
    async with ctx.app.engine.connect() as conn:
        rows = (await conn.execute(query.limit(100))).all()
    return [dict(r._mapping) for r in rows]


async def get_card(ctx: WebContext, call: Call) -> dict[str, Any]:
    card = await own_card(ctx, call)
    linked = [x for x in await linked_cards(ctx, card) if may_act_on(call.who, card=x)]
    return {"card": card_view(call.who, card),
            "linked": [{**card_view(call.who, x), "link": link_of(card, x)} for x in linked]}


def link_of(card: dict[str, Any], other: dict[str, Any]) -> dict[str, str]:
    """How `other` is linked to `card`: the link field, and `from` when `card` names `other`
    in it (the card is `other`'s transfer, repeat...), `to` when `other` names it."""
    for field in LINK_FIELDS:
        if card.get(field) == other["number"]:
            return {"field": field, "direction": "from"}
    field = next((f for f in LINK_FIELDS if other.get(f) == card["number"]), "")
    return {"field": field, "direction": "to"}


def completes(card: dict[str, Any], fields: dict[str, Any]) -> bool:
    """Does this edit complete the card (topic and resolution both filled, the first time)?"""
    if card.get("completed_at") is not None or not {"topic", "resolution"} & set(fields):
        return False
    after = {**card, **fields}
    return bool((after.get("topic") or "").strip() and (after.get("resolution") or "").strip())


async def patch_card(ctx: WebContext, call: Call) -> dict[str, Any]:
    before = await own_card(ctx, call)
    body: CardPatch = call.body
    fields: dict[str, Any] = {k: getattr(body, k) for k in body.model_fields_set}
    if completes(before, fields):
        fields["completed_at"] = time.time()
    number = _number(call)
    ctx.app.writer.submit(CardWrite(number, fields))
    await ctx.app.writer.flush()
    card = await ctx.app.store.get(number)
    assert card is not None
    return {"card": card_view(call.who, card)}


def endpoints(ctx: WebContext) -> list[Endpoint]:
    num = {"number": "card number"}
    return [
        Endpoint("GET", "/api/v1/cards", "Search cards (newest first, paged); operators get "
                 "their own", lambda c: search_cards(ctx, c), READERS, CardQuery,
                 scope=Scoping.FILTERED),
        Endpoint("GET", "/api/v1/cards/{number}", "One card with its linked cards",
                 lambda c: get_card(ctx, c), READERS, path_params=num),
        Endpoint("PATCH", "/api/v1/cards/{number}", "Fill topic, resolution, notes, caller e-mail",
                 lambda c: patch_card(ctx, c), ALL_ROLES, body=CardPatch,
                 path_params=num),
    ]

"""The callback feature's endpoints: requests and scheduled outbound calls (as `ccrouter
callback` / `ccrouter outbound` do, over the shared database; the dispatcher picks a change up
at its next look)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import TYPE_CHECKING, Any

from pydantic import Field

from ccrouter.callbacks import model as cb
from ccrouter.callbacks.config import callback_settings
from ccrouter.callbacks.store import CallbackStore, OpenRequestExists
from ccrouter.web.api import STAFF, ApiError, Call, Endpoint, Input, bad_request, int_path
from ccrouter.web.context import WebContext

if TYPE_CHECKING:
    from ccrouter.runtime import Daemon


class CallbackQuery(Input):
    state: cb.State | None = None
    kind: cb.Kind | None = None


class OutboundBody(Input):
    number: str = Field(min_length=3, max_length=32, pattern=r"^\+?\d+$")
    target: str = Field(min_length=1, max_length=80)
    at: dt.datetime | None = Field(default=None, description="when to call; default: now")
    message: str = Field(default="", max_length=200, pattern=r"^[A-Za-z0-9_/.-]*$")
    language: str = Field(default="", max_length=20)


def _request(r: cb.Request) -> dict[str, Any]:
    return dataclasses.asdict(r)


class Callbacks:
    def __init__(self, ctx: WebContext) -> None:
        self.ctx = ctx
        self.store = CallbackStore(ctx.app.engine)

    async def list(self, call: Call) -> Any:
        q: CallbackQuery = call.query
        states = [q.state.value] if q.state else []
        found = await self.store.find(states, kind=q.kind.value if q.kind else None)
        return [_request(r) for r in found]

    async def cancel(self, call: Call) -> Any:
        request_id = int_path(call, "request")
        r = await self.store.cancel(request_id, f"cancelled_by:{call.who.name}", time.time())
        if r is None:
            found = await self.store.get(request_id)
            if found is None:
                raise ApiError(404, f"no callback request {request_id}")
            raise ApiError(409, f"request {request_id} is {found.state}: not cancelled")
        return _request(r)

    async def schedule_outbound(self, call: Call) -> Any:
        b: OutboundBody = call.body
        s = self.ctx.settings
        names = [t.name for t in s.targets]
        if b.target not in names:
            raise bad_request("target", f"target: unknown target {b.target!r}")
        if b.language and b.language not in s.languages:
            raise bad_request("language", f"language: unknown language {b.language!r}")
        c = callback_settings(s)
        policy = cb.Policy(withheld=c.withheld_pattern, valid=c.valid_pattern,
                           do_not_call=frozenset(c.do_not_call), short_abandon_s=0)
        why = cb.refusal(b.number, 0, policy)
        if why is not None:
            raise bad_request("number", f"number: cannot be called ({why.value})")
        now = time.time()
        at = self.ctx.to_epoch(b.at) if b.at else now
        t = s.target(b.target)
        try:
            added = await self.store.add(
                number=b.number, kind=cb.Kind.OUTBOUND, target=t.name, now=now, place_at=at,
                due_at=at, language=b.language or t.language, product=t.product,
                message=b.message)
        except OpenRequestExists as exc:
            raise ApiError(409, f"number: {exc}", "number") from None
        r = await self.store.get(added.id)
        return _request(r) if r else {"id": added.id}


def endpoints(ctx: WebContext) -> list[Endpoint]:
    o = Callbacks(ctx)
    req = {"request": "callback request id"}
    return [
        Endpoint("GET", "/api/v1/callbacks", "Callback requests and outbound calls",
                 o.list, STAFF, CallbackQuery),
        Endpoint("POST", "/api/v1/callbacks/{request}/cancel", "Cancel a pending request",
                 o.cancel, STAFF, path_params=req),
        Endpoint("POST", "/api/v1/outbound", "Schedule an outbound call (reminder)",
                 o.schedule_outbound, STAFF, body=OutboundBody),
    ]


async def site(daemon: Daemon, ctx: WebContext) -> list[Endpoint]:
    return endpoints(ctx)

"""The IVR's endpoints: incident announcements (as `ccrouter incident` does, over the shared
database; the daemon plays them from the next call)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from pydantic import Field

from ccrouter.config import Settings
from ccrouter.ivr.incidents import IncidentError, IncidentService
from ccrouter.web.api import (
    STAFF,
    TEXT_PATTERN,
    ApiError,
    Call,
    Endpoint,
    Input,
    bad_request,
    int_path,
)
from ccrouter.web.context import WebContext

if TYPE_CHECKING:
    from ccrouter.runtime import Daemon


class IncidentQuery(Input):
    all: bool = Field(default=False, description="include cleared and expired incidents")


class IncidentBody(Input):
    products: list[str] = Field(default_factory=list, max_length=50,
                                description="product lines; empty: every line")
    prompt: str | None = Field(default=None, max_length=200, pattern=TEXT_PATTERN)
    text: str = Field(default="", max_length=500, pattern=TEXT_PATTERN)
    duration_s: float | None = Field(default=None, gt=0, le=31 * 86400)
    expires_at: dt.datetime | None = None


class Incidents:
    def __init__(self, ctx: WebContext) -> None:
        self.ctx = ctx
        self.service = IncidentService(ctx.app.engine, ctx.settings.products)
        ctx.reload_hooks.append(self._reconfigure)

    def _reconfigure(self, s: Settings) -> None:
        self.service = IncidentService(self.ctx.app.engine, s.products)

    async def list(self, call: Call) -> Any:
        q: IncidentQuery = call.query
        return [i.as_dict() for i in await self.service.list(include_inactive=q.all)]

    async def set(self, call: Call) -> Any:
        b: IncidentBody = call.body
        expires = self.ctx.to_epoch(b.expires_at) if b.expires_at else None
        try:
            incident = await self.service.set(
                products=b.products, prompt=b.prompt, text=b.text, duration_s=b.duration_s,
                expires_at=expires, created_by=call.who.name)
        except IncidentError as exc:
            raise bad_request("body", f"body: {exc}") from None
        return incident.as_dict()

    async def clear(self, call: Call) -> Any:
        try:
            return (await self.service.clear(int_path(call, "incident"))).as_dict()
        except IncidentError as exc:
            raise ApiError(404, str(exc)) from None


def endpoints(ctx: WebContext) -> list[Endpoint]:
    o = Incidents(ctx)
    inc = {"incident": "incident id"}
    return [
        Endpoint("GET", "/api/v1/incidents", "Active incidents (all with ?all=true)",
                 o.list, STAFF, IncidentQuery),
        Endpoint("POST", "/api/v1/incidents", "Announce an incident on product lines",
                 o.set, STAFF, body=IncidentBody),
        Endpoint("DELETE", "/api/v1/incidents/{incident}", "Clear an incident now",
                 o.clear, STAFF, path_params=inc),
    ]


async def site(daemon: Daemon, ctx: WebContext) -> list[Endpoint]:
    return endpoints(ctx)

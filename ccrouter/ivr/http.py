"""The IVR's endpoints: incident announcements (as `ccrouter incident` does, over the shared
database; the daemon plays them from the next call), in the CLI's words: `product`, `for`,
`until`."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import Field, field_validator

from ccrouter.config import Settings
from ccrouter.ivr.incidents import (
    MAX_DURATION_S,
    IncidentError,
    IncidentService,
    parse_duration,
)
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

log = structlog.get_logger(__name__)


class IncidentQuery(Input):
    all: bool = Field(default=False, description="include cleared and expired incidents")


class IncidentBody(Input):
    """The words of `ccrouter incident set`: `product`, `for`, `until`. The first API's
    `products`, `duration_s` and `expires_at` are still accepted (deprecated)."""

    product: list[str] | str | None = Field(
        default=None, description="a product line, or a list of them (`--product`); "
        "absent or empty: every line")  # fmt: skip
    prompt: str | None = Field(default=None, max_length=200, pattern=TEXT_PATTERN)
    text: str = Field(default="", max_length=500, pattern=TEXT_PATTERN)
    for_: str | float | None = Field(
        default=None, alias="for", description="how long (`--for`): 90m, 1h, 2h30m, 1d, or "
        "a number of seconds; give this or `until`")  # fmt: skip
    until: dt.datetime | None = Field(
        default=None, description="until an ISO time (`--until`), e.g. 2026-05-01T18:00")
    products: list[str] | None = Field(
        default=None, max_length=50, json_schema_extra={"deprecated": True},
        description="deprecated: use `product`")  # fmt: skip
    duration_s: float | None = Field(
        default=None, gt=0, le=31 * 86400, json_schema_extra={"deprecated": True},
        description="deprecated: use `for`")  # fmt: skip
    expires_at: dt.datetime | None = Field(
        default=None, json_schema_extra={"deprecated": True}, description="deprecated: use `until`")

    @field_validator("for_", mode="before")
    @classmethod
    def _no_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("a duration such as 90m, 1h, 2h30m, 1d, or a number of seconds")
        return value

    def lines(self) -> list[str]:
        """The product lines asked for, in either spelling (a 400 naming the field if both)."""
        if self.product is not None and self.products is not None:
            raise _both("products", "product")
        lines = [self.product] if isinstance(self.product, str) else self.product
        lines = lines if lines is not None else self.products or []
        if len(lines) > 50:
            raise bad_request("product", "product: at most 50 product lines")
        return lines

    def duration(self) -> float | None:
        """`for` (or the old `duration_s`) in seconds."""
        if self.for_ is not None and self.duration_s is not None:
            raise _both("duration_s", "for")
        if self.for_ is None:
            return self.duration_s
        try:
            seconds = (parse_duration(self.for_) if isinstance(self.for_, str)
                       else float(self.for_))  # fmt: skip
        except IncidentError as exc:
            raise bad_request("for", f"for: {exc}") from None
        if not 0 < seconds <= MAX_DURATION_S:
            raise bad_request("for", f"for: from 1 s to 31 days, got {self.for_!r}")
        return seconds

    def end(self) -> dt.datetime | None:
        """`until` (or the old `expires_at`)."""
        if self.until is not None and self.expires_at is not None:
            raise _both("expires_at", "until")
        return self.until if self.until is not None else self.expires_at

    def old_spellings(self) -> list[str]:
        return [f for f in ("products", "duration_s", "expires_at") if getattr(self, f) is not None]


def _both(old: str, new: str) -> ApiError:
    return bad_request(old, f"{old}: the deprecated spelling of `{new}`; give only `{new}`")


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
        lines, duration, end = b.lines(), b.duration(), b.end()
        if b.old_spellings():
            log.warning("incident_api_deprecated_fields", fields=b.old_spellings(),
                        use="product, for, until")  # fmt: skip
        expires = self.ctx.to_epoch(end) if end else None
        try:
            incident = await self.service.set(
                products=lines, prompt=b.prompt, text=b.text, duration_s=duration,
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
        Endpoint("POST", "/api/v1/incidents",
                 "Announce an incident: product lines, for or until, a prompt and/or a text",
                 o.set, STAFF, body=IncidentBody),
        Endpoint("DELETE", "/api/v1/incidents/{incident}", "Clear an incident now",
                 o.clear, STAFF, path_params=inc),
    ]


async def site(daemon: Daemon, ctx: WebContext) -> list[Endpoint]:
    return endpoints(ctx)

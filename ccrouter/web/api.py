"""The endpoint table: one `Endpoint` per route, with its roles and its input models.

The table is the single source of the aiohttp routes *and* the OpenAPI document, so the two
cannot drift. Every request goes through `make_handler`: token -> 401, role -> 403, the scope
guard (a scoped token and the path's `{operator}` / `{number}`: 403 / 404), query and body
validated by pydantic -> 400 naming the field, then the handler. Handlers raise `ApiError`
for 403/404/409 and return a JSON-able value or a StreamResponse.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from ccrouter.config import Settings
from ccrouter.web.auth import Principal, Role, TokenStore
from ccrouter.web.scope import principal

log = structlog.get_logger(__name__)

ALL_ROLES: Final = frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN})
"""The centre's roles. Outside viewers are let in only where an endpoint names them."""
READERS: Final = ALL_ROLES | {Role.VIEWER}
"""The centre's roles and outside viewers (read-only endpoints of scoped data)."""
STAFF: Final = frozenset({Role.SUPERVISOR, Role.ADMIN})
ADMIN: Final = frozenset({Role.ADMIN})


class Scoping(StrEnum):
    """How an endpoint applies a token's scope (stated in the OpenAPI document, `x-scope`)."""

    NONE = "none"
    """Not limited by a scope (queue-level figures, incidents, a feature's own request lists,
    the token itself)."""
    OPERATOR = "operator"
    """The path's `{operator}` must be in a team supervisor's teams (else 403)."""
    CARD = "card"
    """The path's card must be in the token's scope (else 404, as for no card)."""
    FILTERED = "filtered"
    """The answer holds only what is in the token's scope."""


SCOPE_TEXT: Final = {
    Scoping.NONE: "not limited by a token's scope",
    Scoping.OPERATOR: "team supervisors: only their teams' operators (else 403)",
    Scoping.CARD: "team supervisors: cards their teams' operators took; viewers: cards of "
    "their product lines / targets (else 404)",
    Scoping.FILTERED: "team supervisors: only their teams' operators, calls and cards; "
    "viewers: only their product lines / targets",
}
TOKEN_QUERY: Final = "access_token"
"""Query parameter carrying the token where a header cannot be set (EventSource)."""
MAX_BODY: Final = 64 * 1024


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ApiError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


TEXT_PATTERN: Final = r"^[^\x00]*$"
"""Free text in a body: anything but NUL."""


def int_path(call: Call, name: str) -> int:
    """A positive integer path parameter, or a 400 naming it."""
    raw = call.path[name]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise bad_request(name, f"{name}: a positive integer is required")
    return int(raw)


def bad_request(field: str, message: str) -> ApiError:
    return ApiError(400, message, field)


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler gets: the request, who made it, its validated query, path and body."""

    request: web.Request
    who: Principal
    query: Any
    body: Any
    path: Mapping[str, str]


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    summary: str
    handler: Handler
    roles: frozenset[Role] = ALL_ROLES
    query: type[Input] | None = None
    body: type[Input] | None = None
    stream: bool = False
    """A server-sent-event stream (text/event-stream) rather than JSON."""
    csv: bool = False
    """Also answers text/csv (Accept header or ?format=csv)."""
    path_params: Mapping[str, str] = field(default_factory=dict)
    """Path parameter -> description."""
    scope: Scoping | None = None
    """How a token's scope applies; default: CARD with a `{number}` in the path, OPERATOR
    with an `{operator}`, else NONE."""

    @property
    def scoping(self) -> Scoping:
        if self.scope is not None:
            return self.scope
        if "{number}" in self.path:
            return Scoping.CARD
        return Scoping.OPERATOR if "{operator}" in self.path else Scoping.NONE


Principals = Callable[[str], Awaitable[Principal | None]]
Guard = Callable[["Endpoint", Principal, Mapping[str, str]], Awaitable[None]]
"""Raises ApiError when a scoped principal may not touch the path's operator or card."""


async def no_guard(ep: Endpoint, who: Principal, path: Mapping[str, str]) -> None:
    return None


def error_response(status: int, message: str, field: str | None = None) -> web.Response:
    kind = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
            405: "method_not_allowed", 409: "conflict", 413: "too_large"}.get(status, "error")
    body: dict[str, Any] = {"error": kind, "message": message}
    if field is not None:
        body["field"] = field
    headers = {"WWW-Authenticate": 'Bearer realm="ccrouter"'} if status == 401 else None
    return web.json_response(body, status=status, headers=headers)


def _first_error(exc: ValidationError, where: str) -> ApiError:
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in err["loc"]) or where
    return bad_request(loc, f"{loc}: {err['msg']}")


def _token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" and value.strip() else None
    return request.query.get(TOKEN_QUERY) or None


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _query_input(request: web.Request) -> dict[str, str]:
    out: dict[str, str] = {}
    for key in request.query:
        if key == TOKEN_QUERY:
            continue
        values = request.query.getall(key)
        if len(values) > 1:
            raise bad_request(key, f"{key}: give it once")
        out[key] = values[0]
    return out


async def _body(request: web.Request, model: type[Input]) -> Input:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, f"body larger than {MAX_BODY} bytes", "body")
    raw = await request.read()
    if len(raw) > MAX_BODY:
        raise ApiError(413, f"body larger than {MAX_BODY} bytes", "body")
    try:
        data = json.loads(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad_request("body", f"body: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise bad_request("body", "body: a JSON object is required")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc, "body") from None


def make_handler(
    ep: Endpoint, principal_for: Principals, guard: Guard = no_guard
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            token = _token(request)
            who = await principal_for(token) if token else None
            if who is None:
                msg = "invalid or revoked token" if token else "a token is required"
                return error_response(401, msg)
            if who.role not in ep.roles:
                return error_response(403, f"role {who.role} may not {ep.method} {ep.path}")
            if who.scoped:
                await guard(ep, who, request.match_info)
            query: Input | None = None
            if ep.query is not None:
                try:
                    query = ep.query.model_validate(_query_input(request))
                except ValidationError as exc:
                    raise _first_error(exc, "query") from None
            elif _query_input(request):
                name = next(iter(_query_input(request)))
                raise bad_request(name, f"{name}: unknown query parameter")
            body = await _body(request, ep.body) if ep.body is not None else None
            result = await ep.handler(Call(request, who, query, body, request.match_info))
        except ApiError as e:
            return error_response(e.status, e.message, e.field)
        if isinstance(result, web.StreamResponse):
            return result
        return web.Response(text=dumps(result), content_type="application/json")

    return handle


def add_routes(app: web.Application, endpoints: Sequence[Endpoint], who: Principals,
               guard: Guard = no_guard) -> None:  # fmt: skip
    for ep in endpoints:
        app.router.add_route(ep.method, ep.path, make_handler(ep, who, guard))


class Auth:
    """Token -> Principal: the operator's interface, the role's masking, the token's scope
    resolved against the current config (teams and their operators)."""

    def __init__(self, tokens: TokenStore, settings: Settings) -> None:
        self._tokens, self._settings = tokens, settings

    def reconfigure(self, settings: Settings) -> None:
        """After a config reload: operators, teams and the masked roles."""
        self._settings = settings

    async def __call__(self, token: str) -> Principal | None:
        if len(token) > 200:
            return None
        info = await self._tokens.lookup(token)
        if info is None:
            return None
        s = self._settings
        return principal(info, s, s.http.mask_numbers_for)


@web.middleware
async def errors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """aiohttp's own errors (404, 405, 413) as JSON; an unexpected failure is logged, 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason)
    except (ConnectionResetError, TimeoutError):
        raise
    except Exception:
        log.exception("http_handler_failed", path=request.path, method=request.method)
        return error_response(500, "internal error (logged)")

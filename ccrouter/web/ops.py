"""Endpoints for what the other features built: incidents (IVR), callback requests and
scheduled outbound calls (callbacks), operators' login/pause state and skills (routing).

Each calls that feature's public service over the shared database, exactly as its CLI does;
the running daemon's services pick the change up (incidents at the next call, operator state
at the next `routing.state_poll_s`, callback requests at the dispatcher's next look).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any, Literal

from pydantic import Field, field_validator

from ccrouter.callbacks.store import CallbackStore, OpenRequestExists
from ccrouter.config import Settings
from ccrouter.domain import callback as cb
from ccrouter.ivr.incidents import IncidentError, IncidentService
from ccrouter.routing.state import OperatorError, OperatorService, OperatorStore
from ccrouter.web.api import ADMIN, ALL_ROLES, STAFF, ApiError, Call, Endpoint, Input, bad_request
from ccrouter.web.auth import Role
from ccrouter.web.context import WebContext

_TEXT = r"^[^\x00]*$"


class IncidentQuery(Input):
    all: bool = Field(default=False, description="include cleared and expired incidents")


class IncidentBody(Input):
    products: list[str] = Field(default_factory=list, max_length=50,
                                description="product lines; empty: every line")
    prompt: str | None = Field(default=None, max_length=200, pattern=_TEXT)
    text: str = Field(default="", max_length=500, pattern=_TEXT)
    duration_s: float | None = Field(default=None, gt=0, le=31 * 86400)
    expires_at: dt.datetime | None = None


class CallbackQuery(Input):
    state: cb.State | None = None
    kind: cb.Kind | None = None


class OutboundBody(Input):
    number: str = Field(min_length=3, max_length=32, pattern=r"^\+?\d+$")
    target: str = Field(min_length=1, max_length=80)
    at: dt.datetime | None = Field(default=None, description="when to call; default: now")
    message: str = Field(default="", max_length=200, pattern=r"^[A-Za-z0-9_/.-]*$")
    language: str = Field(default="", max_length=20)


class StateBody(Input):
    action: Literal["login", "logout", "pause", "unpause"]
    reason: str = Field(default="", max_length=100, pattern=_TEXT)


class SkillsBody(Input):
    skills: dict[str, int] = Field(max_length=100)
    replace: bool = Field(default=False, description="replace every skill (else merge)")

    @field_validator("skills")
    @classmethod
    def _levels(cls, skills: dict[str, int]) -> dict[str, int]:
        for name, level in skills.items():
            if not 0 <= level <= 100:
                raise ValueError(f"{name}: level must be 0..100, got {level}")
        return skills


def _int_path(call: Call, name: str) -> int:
    raw = call.path[name]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise bad_request(name, f"{name}: a positive integer is required")
    return int(raw)


def _request(r: cb.Request) -> dict[str, Any]:
    return dataclasses.asdict(r)


def _op_view(op: Any, live: dict[str, Any]) -> dict[str, Any]:
    return {"id": op.id, "name": op.name, "interface": op.interface,
            "logged_in": op.logged_in, "paused": op.paused, "pause_reason": op.pause_reason,
            "skills": dict(op.skills), "live": live.get(op.interface)}


class Ops:
    def __init__(self, ctx: WebContext) -> None:
        s = ctx.settings
        self.ctx = ctx
        self.incidents = IncidentService(ctx.app.engine, s.products)
        self.callbacks = CallbackStore(ctx.app.engine)
        self.operators = OperatorService(s, OperatorStore(ctx.app.engine))
        ctx.reload_hooks.append(self._reconfigure)

    def _reconfigure(self, s: Settings) -> None:
        self.incidents = IncidentService(self.ctx.app.engine, s.products)
        self.operators = OperatorService(s, OperatorStore(self.ctx.app.engine))

    # --- incidents --------------------------------------------------------------------------

    async def list_incidents(self, call: Call) -> Any:
        q: IncidentQuery = call.query
        return [i.as_dict() for i in await self.incidents.list(include_inactive=q.all)]

    async def set_incident(self, call: Call) -> Any:
        b: IncidentBody = call.body
        expires = self.ctx.to_epoch(b.expires_at) if b.expires_at else None
        try:
            incident = await self.incidents.set(
                products=b.products, prompt=b.prompt, text=b.text, duration_s=b.duration_s,
                expires_at=expires, created_by=call.who.name)
        except IncidentError as exc:
            raise bad_request("body", f"body: {exc}") from None
        return incident.as_dict()

    async def clear_incident(self, call: Call) -> Any:
        try:
            return (await self.incidents.clear(_int_path(call, "incident"))).as_dict()
        except IncidentError as exc:
            raise ApiError(404, str(exc)) from None

    # --- callbacks and outbound calls -----------------------------------------------------

    async def list_callbacks(self, call: Call) -> Any:
        q: CallbackQuery = call.query
        states = [q.state.value] if q.state else []
        found = await self.callbacks.find(states, kind=q.kind.value if q.kind else None)
        return [_request(r) for r in found]

    async def cancel_callback(self, call: Call) -> Any:
        request_id = _int_path(call, "request")
        r = await self.callbacks.cancel(request_id, f"cancelled_by:{call.who.name}", time.time())
        if r is None:
            found = await self.callbacks.get(request_id)
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
        c = s.callbacks
        policy = cb.Policy(withheld=c.withheld_pattern, valid=c.valid_pattern,
                           do_not_call=frozenset(c.do_not_call), short_abandon_s=0)
        why = cb.refusal(b.number, 0, policy)
        if why is not None:
            raise bad_request("number", f"number: cannot be called ({why.value})")
        now = time.time()
        at = self.ctx.to_epoch(b.at) if b.at else now
        t = s.target(b.target)
        try:
            added = await self.callbacks.add(
                number=b.number, kind=cb.Kind.OUTBOUND, target=t.name, now=now, place_at=at,
                due_at=at, language=b.language or t.language, product=t.product,
                message=b.message)
        except OpenRequestExists as exc:
            raise ApiError(409, f"number: {exc}", "number") from None
        r = await self.callbacks.get(added.id)
        return _request(r) if r else {"id": added.id}

    # --- operators --------------------------------------------------------------------------

    def _own(self, call: Call) -> str:
        op_id = call.path["operator"]
        if op_id not in self.operators.ids:
            raise ApiError(404, f"no operator {op_id!r}")
        if call.who.role is Role.OPERATOR and call.who.operator != op_id:
            raise ApiError(403, "operators may see and change only themselves")
        return op_id

    def _live(self) -> dict[str, Any]:
        from ccrouter.web.live_routes import operators

        return {o["interface"]: {"state": o["state"], "queues": o["queues"]}
                for o in operators(self.ctx)}

    async def list_operators(self, call: Call) -> Any:
        live = self._live()
        return [_op_view(op, live) for op in (await self.operators.states()).values()]

    async def get_operator(self, call: Call) -> Any:
        return _op_view(await self.operators.state(self._own(call)), self._live())

    async def set_state(self, call: Call) -> Any:
        op_id, b = self._own(call), call.body
        by = f"api:{call.who.name}"
        ops = self.operators
        if b.action == "pause":
            state = await ops.pause(op_id, b.reason, by=by)
        elif b.action == "unpause":
            state = await ops.unpause(op_id, by=by)
        elif b.action == "login":
            state = await ops.login(op_id, by=by)
        else:
            state = await ops.logout(op_id, by=by)
        return _op_view(state, self._live())

    async def set_skills(self, call: Call) -> Any:
        op_id, b = self._own(call), call.body
        try:
            state = await self.operators.set_skills(op_id, b.skills, replace_all=b.replace,
                                                    by=f"api:{call.who.name}")
        except OperatorError as exc:
            raise bad_request("skills", f"skills: {exc}") from None
        return _op_view(state, self._live())

    async def reset_skills(self, call: Call) -> Any:
        state = await self.operators.reset_skills(self._own(call), by=f"api:{call.who.name}")
        return _op_view(state, self._live())


def endpoints(ctx: WebContext) -> list[Endpoint]:
    o = Ops(ctx)
    inc = {"incident": "incident id"}
    req = {"request": "callback request id"}
    op = {"operator": "operator id (config operators[].id)"}
    return [
        Endpoint("GET", "/api/v1/incidents", "Active incidents (all with ?all=true)",
                 o.list_incidents, STAFF, IncidentQuery),
        Endpoint("POST", "/api/v1/incidents", "Announce an incident on product lines",
                 o.set_incident, STAFF, body=IncidentBody),
        Endpoint("DELETE", "/api/v1/incidents/{incident}", "Clear an incident now",
                 o.clear_incident, STAFF, path_params=inc),
        Endpoint("GET", "/api/v1/callbacks", "Callback requests and outbound calls",
                 o.list_callbacks, STAFF, CallbackQuery),
        Endpoint("POST", "/api/v1/callbacks/{request}/cancel", "Cancel a pending request",
                 o.cancel_callback, STAFF, path_params=req),
        Endpoint("POST", "/api/v1/outbound", "Schedule an outbound call (reminder)",
                 o.schedule_outbound, STAFF, body=OutboundBody),
        Endpoint("GET", "/api/v1/operators", "Operators: login/pause, skills, live state",
                 o.list_operators, STAFF),
        Endpoint("GET", "/api/v1/operators/{operator}", "One operator (operators: themselves)",
                 o.get_operator, ALL_ROLES, path_params=op),
        Endpoint("POST", "/api/v1/operators/{operator}/state", "Log in/out, pause/unpause "
                 "(operators: themselves)", o.set_state, ALL_ROLES, body=StateBody,
                 path_params=op),
        Endpoint("PUT", "/api/v1/operators/{operator}/skills", "Change skill levels (admin)",
                 o.set_skills, ADMIN, body=SkillsBody, path_params=op),
        Endpoint("DELETE", "/api/v1/operators/{operator}/skills", "Back to the config's skills "
                 "(admin)", o.reset_skills, ADMIN, path_params=op),
    ]

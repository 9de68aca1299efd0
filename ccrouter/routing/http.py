"""Routing's endpoints: operators' login/pause state and skills (as `ccrouter operator` does,
over the shared database; the daemon applies a change within `routing.state_poll_s`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from ccrouter.config import Settings
from ccrouter.routing.state import OperatorError, OperatorService, OperatorStore
from ccrouter.web.api import (
    ADMIN,
    ALL_ROLES,
    STAFF,
    TEXT_PATTERN,
    ApiError,
    Call,
    Endpoint,
    Input,
    Scoping,
    bad_request,
)
from ccrouter.web.context import WebContext
from ccrouter.web.scope import may_act_on

if TYPE_CHECKING:
    from ccrouter.runtime import Daemon
from ccrouter.web.live_routes import operators


class StateBody(Input):
    action: Literal["login", "logout", "pause", "unpause"]
    reason: str = Field(default="", max_length=100, pattern=TEXT_PATTERN)


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


def _op_view(op: Any, live: dict[str, Any]) -> dict[str, Any]:
    return {"id": op.id, "name": op.name, "interface": op.interface,
            "logged_in": op.logged_in, "paused": op.paused, "pause_reason": op.pause_reason,
            "skills": dict(op.skills), "live": live.get(op.interface)}


class Operators:
    def __init__(self, ctx: WebContext) -> None:
        self.ctx = ctx
        self.service = OperatorService(ctx.settings, OperatorStore(ctx.app.engine))
        ctx.reload_hooks.append(self._reconfigure)

    def _reconfigure(self, s: Settings) -> None:
        self.service = OperatorService(s, OperatorStore(self.ctx.app.engine))

    def _own(self, call: Call) -> str:
        op_id = call.path["operator"]
        if op_id not in self.service.ids:
            raise ApiError(404, f"no operator {op_id!r}")
        if not may_act_on(call.who, operator=op_id):
            raise ApiError(403, "operators may see and change only themselves, team "
                           "supervisors only their teams' operators")
        return op_id

    def _live(self) -> dict[str, Any]:
        return {o["interface"]: {"state": o["state"], "queues": o["queues"]}
                for o in operators(self.ctx)}

    async def list(self, call: Call) -> Any:
        live = self._live()
        return [_op_view(op, live) for op in (await self.service.states()).values()
                if may_act_on(call.who, operator=op.id)]  # fmt: skip

    async def get(self, call: Call) -> Any:
        return _op_view(await self.service.state(self._own(call)), self._live())

    async def set_state(self, call: Call) -> Any:
        op_id, b = self._own(call), call.body
        by = f"api:{call.who.name}"
        ops = self.service
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
            state = await self.service.set_skills(op_id, b.skills, replace_all=b.replace,
                                                  by=f"api:{call.who.name}")
        except OperatorError as exc:
            raise bad_request("skills", f"skills: {exc}") from None
        return _op_view(state, self._live())

    async def reset_skills(self, call: Call) -> Any:
        state = await self.service.reset_skills(self._own(call), by=f"api:{call.who.name}")
        return _op_view(state, self._live())


def endpoints(ctx: WebContext) -> list[Endpoint]:
    o = Operators(ctx)
    op = {"operator": "operator id (config operators[].id)"}
    return [
        Endpoint("GET", "/api/v1/operators", "Operators: login/pause, skills, live state "
                 "(team supervisors: their teams')", o.list, STAFF, scope=Scoping.FILTERED),
        Endpoint("GET", "/api/v1/operators/{operator}", "One operator (operators: themselves)",
                 o.get, ALL_ROLES, path_params=op),
        Endpoint("POST", "/api/v1/operators/{operator}/state", "Log in/out, pause/unpause "
                 "(operators: themselves)", o.set_state, ALL_ROLES, body=StateBody,
                 path_params=op),
        Endpoint("PUT", "/api/v1/operators/{operator}/skills", "Change skill levels (admin)",
                 o.set_skills, ADMIN, body=SkillsBody, path_params=op),
        Endpoint("DELETE", "/api/v1/operators/{operator}/skills", "Back to the config's skills "
                 "(admin)", o.reset_skills, ADMIN, path_params=op),
    ]


async def site(daemon: Daemon, ctx: WebContext) -> list[Endpoint]:
    return endpoints(ctx)

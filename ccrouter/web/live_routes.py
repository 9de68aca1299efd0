"""Live endpoints: queues, operators, calls in progress, the wallboard and screen-pop streams."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from ccrouter.web.api import ALL_ROLES, READERS, STAFF, ApiError, Call, Endpoint, Scoping
from ccrouter.web.auth import Principal, Role, mask_number
from ccrouter.web.context import WebContext
from ccrouter.web.scope import may_act_on, scope_out
from ccrouter.web.streams import sse

WALLBOARD = "wallboard"
TEAM_WALLBOARD = "wallboard:teams:"
"""+ the sorted team names, comma-separated: the wallboard of a team supervisor."""


def operator_topic(op_id: str) -> str:
    return f"operator:{op_id}"


def wallboard_topic(teams: frozenset[str] | None) -> str:
    return WALLBOARD if teams is None else TEAM_WALLBOARD + ",".join(sorted(teams))


def team_names(ctx: WebContext, who: Principal) -> set[str]:
    """The names and interfaces of a team supervisor's operators (live rows name operators
    by member name or interface)."""
    out: set[str] = set()
    for op_id in who.members:
        op = ctx.operator(op_id)
        if op is not None:
            out |= {op.interface, op.name}
    return out


def _cluster(ctx: WebContext, kind: str, own: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """This node's rows, each with its node; with several nodes, the others' after them."""
    node = ctx.settings.asterisk.node
    rows = [{**r, "node": node} for r in own]
    return rows if ctx.cluster_live is None else rows + ctx.cluster_live.rows(kind)


def queues(ctx: WebContext, *, local: bool = False) -> list[dict[str, Any]]:
    own = [dataclasses.asdict(v) for v in ctx.live.queues(time.time())]
    return own if local else _cluster(ctx, "queues", own)


def operators(ctx: WebContext, *, local: bool = False) -> list[dict[str, Any]]:
    configured = {o.interface: (o.id, o.name) for o in ctx.settings.operators}
    own = [dataclasses.asdict(v) for v in ctx.live.operators(configured)]
    return own if local else _cluster(ctx, "operators", own)


def calls(ctx: WebContext, *, masked: bool = False, local: bool = False) -> list[dict[str, Any]]:
    """Calls in progress (`local`: this node's only, unmasked when not `masked`)."""
    now = time.time()
    own = []
    for v in ctx.app.tracker.book.views():
        row = dataclasses.asdict(v)
        row["duration_s"] = round(now - v.started_at, 1)
        own.append(row)
    out = own if local else _cluster(ctx, "calls", own)
    if masked:
        out = [{**r, "caller_num": mask_number(r["caller_num"])} for r in out]
    return out


def snapshot(ctx: WebContext) -> dict[str, list[dict[str, Any]]]:
    """This node's live rows, as the other nodes show them (`web.cluster_live`)."""
    return {"queues": queues(ctx, local=True), "operators": operators(ctx, local=True),
            "calls": calls(ctx, local=True)}  # fmt: skip


def _own_calls(ctx: WebContext, call: Call) -> list[Any]:
    rows = calls(ctx, masked=call.who.mask_numbers)
    if call.who.role is Role.OPERATOR:
        op = ctx.operator(call.who.operator or "")
        names = {op.interface, op.name} if op else set()
    elif call.who.teams is not None:
        names = team_names(ctx, call.who)
    else:
        return rows
    return [r for r in rows if r["operator"] in names or r["ringing"] in names]


def _operators_of(ctx: WebContext, who: Principal) -> list[dict[str, Any]]:
    rows = operators(ctx)
    if who.teams is None:
        return rows
    return [r for r in rows if r["id"] in who.members]


async def me(ctx: WebContext, call: Call) -> dict[str, Any]:
    w = call.who
    return {"name": w.name, "role": w.role.value, "operator": w.operator,
            "interface": w.interface, "numbers_masked": w.mask_numbers,
            "scope": scope_out(w)}


async def operator_stream(ctx: WebContext, call: Call) -> Any:
    op_id = call.path["operator"]
    if ctx.operator(op_id) is None:
        raise ApiError(404, f"no operator {op_id!r}")
    if not may_act_on(call.who, operator=op_id):
        raise ApiError(403, "operators may watch only their own screen; team supervisors "
                       "their teams' operators")
    return await sse(call.request, ctx.hub, operator_topic(op_id), ctx.settings.http.keepalive_s)


def endpoints(ctx: WebContext) -> list[Endpoint]:
    async def _queues(c: Call) -> Any:
        return queues(ctx)

    async def _operators(c: Call) -> Any:
        return _operators_of(ctx, c.who)

    async def _calls(c: Call) -> Any:
        return _own_calls(ctx, c)

    async def _wallboard(c: Call) -> Any:
        topic = wallboard_topic(c.who.teams)
        if c.who.teams is not None:
            ctx.team_boards[topic] = c.who.teams
        return await sse(c.request, ctx.hub, topic, ctx.settings.http.keepalive_s)

    op = {"operator": "operator id (config operators[].id)"}
    return [
        Endpoint("GET", "/api/v1/me", "The token's identity, role and scope",
                 lambda c: me(ctx, c), READERS),
        Endpoint("GET", "/api/v1/live/queues", "Every queue now: waiting, longest wait, "
                 "operators free/busy/paused", _queues, STAFF),
        Endpoint("GET", "/api/v1/live/operators", "Every operator's state now", _operators,
                 STAFF, scope=Scoping.FILTERED),
        Endpoint("GET", "/api/v1/live/calls", "Calls in progress (operators: their own)",
                 _calls, ALL_ROLES, scope=Scoping.FILTERED),
        Endpoint("GET", "/api/v1/live/stream", "Wallboard stream (server-sent events: "
                 "snapshot; a team supervisor's: the team's)", _wallboard, STAFF, stream=True,
                 scope=Scoping.FILTERED),
        Endpoint("GET", "/api/v1/operators/{operator}/stream", "Screen pop stream (server-sent "
                 "events: pop = card + the caller's last 5 cards)",
                 lambda c: operator_stream(ctx, c), ALL_ROLES, stream=True, path_params=op),
    ]

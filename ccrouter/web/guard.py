"""The scope guard: before any handler runs, a scoped token (a team supervisor, a viewer) may
touch the path's `{operator}` and `{number}` (card) only within its scope (`may_act_on`).

An unknown operator or card is left to the handler (its 404); a known one outside the scope
is a 403 for an operator, a 404 for a card (the same answer as a card that does not exist)."""

from __future__ import annotations

from collections.abc import Mapping

from ccrouter.web.api import ApiError, Endpoint, Guard
from ccrouter.web.auth import Principal
from ccrouter.web.context import WebContext
from ccrouter.web.scope import may_act_on


def scope_guard(ctx: WebContext) -> Guard:
    async def guard(ep: Endpoint, who: Principal, path: Mapping[str, str]) -> None:
        """The same rule for every endpoint: its path names what it touches."""
        op_id = path.get("operator")
        if op_id is not None and ctx.operator(op_id) is not None and not may_act_on(
            who, operator=op_id
        ):
            raise ApiError(403, f"operator {op_id!r} is outside this token's scope")
        number = path.get("number")
        if number is not None and number.isascii() and number.isdigit() and len(number) <= 20:
            await ctx.app.writer.flush()
            card = await ctx.app.store.get(number)
            if card is not None and not may_act_on(who, card=card):
                raise ApiError(404, f"no card {number}")

    return guard


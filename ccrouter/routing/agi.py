"""The `route` AGI script: arguments -> requirements -> router -> channel variables.

`AGI(agi://127.0.0.1:4573/route,product=wallet,lang=uz,did=${EXTEN},priority=1,card=...)`
sets CCROUTER_QUEUE, CCROUTER_CARD, CCROUTER_QUEUE_TIMEOUT, CCROUTER_LANGUAGE, CCROUTER_PRODUCT,
QUEUE_PRIO (when > 0), the skill-routing variables and, last, CCROUTER_STATUS=ok — in one round
trip, `EXEC MSet CCROUTER_QUEUE=...,...,CCROUTER_STATUS=ok` (Asterisk's core MSet application),
unless a value holds a character MSet would mangle; then one SET VARIABLE each. A bad or unknown
argument is logged and ignored: the call is still routed. If the router fails, the server sets
CCROUTER_STATUS=error.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from ccrouter.calls.model.cards import is_valid_card_number
from ccrouter.dialplan import (
    ARG_CARD,
    ARG_DIALLED,
    ARG_LANGUAGE,
    ARG_PRIORITY,
    ARG_PRODUCT,
    ROUTE_ARGS,
    STATUS_OK,
    VAR_CARD,
    VAR_FALLBACK_MAX_PENALTY,
    VAR_FALLBACK_QUEUE,
    VAR_LANGUAGE,
    VAR_LAST_AGENT_QUEUE,
    VAR_LAST_AGENT_RING,
    VAR_PRODUCT,
    VAR_QUEUE,
    VAR_QUEUE_MAX_PENALTY,
    VAR_QUEUE_MIN_PENALTY,
    VAR_QUEUE_PRIO,
    VAR_QUEUE_TIMEOUT,
    VAR_STATUS,
    VAR_VOICEMAIL,
)
from ccrouter.pbx.agi.session import AgiArgumentError, AgiRequest, AgiSession, parse_kwarg
from ccrouter.routing.model.decide import Requirements, RouteDecision

log = structlog.get_logger(__name__)

_MAX_PRIORITY = 1_000_000
_SPACE = re.compile(r"\s")


@dataclass(frozen=True, slots=True)
class RouteResult:
    decision: RouteDecision
    card: str
    """The call card number opened for this call."""


class RouteService(Protocol):
    async def route(self, request: AgiRequest, requirements: Requirements) -> RouteResult: ...


def _is_name(value: str) -> bool:
    return bool(value) and value.replace("_", "").replace("-", "").replace(".", "").isalnum()


def requirements_from_args(
    args: Sequence[str], *, dialled: str = "", caller_num: str = ""
) -> tuple[Requirements, list[str]]:
    """The route arguments as Requirements, and what was ignored (one message per problem).
    `dialled` (the channel's DNID or extension) stands when no `did=` argument is given;
    `caller_num` is the channel's caller ID number."""
    values: dict[str, str] = {}
    problems: list[str] = []
    for arg in args:
        if not arg.strip():
            continue
        try:
            key, value = parse_kwarg(arg)
        except AgiArgumentError as exc:
            problems.append(str(exc))
            continue
        if key not in ROUTE_ARGS:
            problems.append(f"unknown argument {key!r} (known: {', '.join(ROUTE_ARGS)})")
        elif key in values:
            problems.append(f"argument {key!r} given twice; the first value is kept")
        else:
            values[key] = value

    def name(key: str) -> str | None:
        value = values.get(key)
        if value is None:
            return None
        if not _is_name(value):
            problems.append(f"bad {key}={value!r}: expected letters, digits, '-', '_', '.'")
            return None
        return value

    priority = 0
    if (text := values.get(ARG_PRIORITY)) is not None:
        if text.isascii() and text.isdigit() and int(text) <= _MAX_PRIORITY:
            priority = int(text)
        else:
            problems.append(f"bad {ARG_PRIORITY}={text!r}: expected 0..{_MAX_PRIORITY}")
    card = values.get(ARG_CARD)
    if card is not None and not is_valid_card_number(card):
        problems.append(f"bad {ARG_CARD}={card!r}: not a card number (wrong check digit?)")
        card = None
    did = values.get(ARG_DIALLED)
    if did is not None and (not did or _SPACE.search(did)):
        problems.append(f"bad {ARG_DIALLED}={did!r}: expected a dialled number")
        did = None
    return (
        Requirements(
            product=name(ARG_PRODUCT),
            language=name(ARG_LANGUAGE),
            dialled=did or dialled or None,
            priority=priority,
            card=card,
            caller_num=caller_num or None,
        ),
        problems,
    )


async def route(session: AgiSession, router: RouteService) -> None:
    request = session.request
    requirements, problems = requirements_from_args(
        request.args, dialled=request.dnid or request.extension, caller_num=request.caller_num
    )
    if request.query:
        problems.append(f"URL query {request.query!r} ignored: pass ,key=value arguments")
    if problems:
        log.warning("route_arguments_ignored", problems=problems)
    result = await router.route(request, requirements)
    await set_route_variables(session, result)


async def set_route_variables(session: AgiSession, result: RouteResult) -> None:
    """Hand a routing result to the dialplan (ccrouter-queue reads these); also used by the
    IVR script when its caller is routed. CCROUTER_STATUS=ok comes last: all of them in one
    `EXEC MSet` round trip when every value is plain, else one SET VARIABLE each
    (`AgiSession.set_variables`)."""
    structlog.contextvars.bind_contextvars(card=result.card)
    decision = result.decision
    if decision.notes:
        log.warning("route_requirements_not_honoured", notes=list(decision.notes))
    pairs = [
        (VAR_QUEUE, decision.queue),
        (VAR_CARD, result.card),
        (VAR_QUEUE_TIMEOUT, str(decision.timeout_s)),
        (VAR_LANGUAGE, decision.language),
        (VAR_PRODUCT, decision.product),
    ]
    if decision.priority > 0:
        pairs.append((VAR_QUEUE_PRIO, str(decision.priority)))
    pairs += routing_variables(decision)
    pairs.append((VAR_STATUS, STATUS_OK))
    await session.set_variables(pairs)


def routing_variables(decision: RouteDecision) -> list[tuple[str, str]]:
    """Skill-based routing's variables: expansion (QUEUE_MAX/MIN_PENALTY, the overflow queue's
    start), overflow (CCROUTER_FALLBACK_QUEUE, CCROUTER_VOICEMAIL), last agent."""
    out: list[tuple[str, str]] = []
    for name, value in (
        (VAR_QUEUE_MAX_PENALTY, decision.max_penalty),
        (VAR_QUEUE_MIN_PENALTY, decision.min_penalty),
        (VAR_FALLBACK_QUEUE, decision.overflow_queue),
        (VAR_FALLBACK_MAX_PENALTY, decision.overflow_max_penalty),
        (VAR_VOICEMAIL, decision.voicemail),
        (VAR_LAST_AGENT_QUEUE, decision.last_agent_queue),
    ):
        if value is not None:
            out.append((name, str(value)))
    step = decision.feature_step
    if step is not None:
        out.append((step.variable, step.dest))
    if decision.last_agent_queue:
        out.append((VAR_LAST_AGENT_RING, str(decision.last_agent_ring_s)))
    return out


def route_script(router: RouteService) -> Callable[[AgiSession], Awaitable[None]]:
    """The `route` script bound to a router, for AgiServer's script table."""
    return functools.partial(route, router=router)

"""The route service behind the `route` AGI script: requirements -> decision -> card.

`route()` (sync) decides from memory only: the routing table, and — once the routing feature
attached its collaborators with `use_skills()` — who is logged in (the membership service) and
the caller's last operator by number (the recent-calls cache). `route_async()` (what the
`route` script calls) adds what may wait, each with a time limit: a quoted card missing from
the cache is read from the database, and the engineer's hook may override the decision.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol

from ccrouter.calls.model.cards import CardWrite
from ccrouter.calls.tracker import CallTracker
from ccrouter.config import Settings
from ccrouter.pbx.agi.session import AgiRequest
from ccrouter.routing.agi import RouteResult
from ccrouter.routing.hook import HookCall, RouteHook
from ccrouter.routing.model.decide import Floor, Requirements, RouteDecision, RoutingTable, decide
from ccrouter.routing.recent import PreviousCall, RecentCalls
from ccrouter.routing.table import routing_table as _routing_table


def routing_table(settings: Settings) -> RoutingTable:
    return _routing_table(settings)


class FloorSource(Protocol):
    def staffed(self) -> frozenset[str] | None: ...
    def free_personal_queue(self, interface: str) -> str | None: ...


class CardSink(Protocol):
    def submit(self, write: CardWrite) -> None: ...


@dataclass(frozen=True, slots=True)
class _Skills:
    floor: FloorSource
    recent: RecentCalls | None
    hook: RouteHook | None
    cards: CardSink


class Router:
    def __init__(self, table: RoutingTable, tracker: CallTracker) -> None:
        self._table = table
        self._tracker = tracker
        self._skills: _Skills | None = None

    def use_skills(self, floor: FloorSource, cards: CardSink, *, recent: RecentCalls | None = None,
                   hook: RouteHook | None = None) -> None:  # fmt: skip
        """Attach the routing feature: staffing, last agent, card notes, the engineer's hook."""
        self._skills = _Skills(floor, recent, hook, cards)

    @staticmethod
    def _complete(request: AgiRequest, requirements: Requirements) -> tuple[Requirements, str]:
        dialled = requirements.dialled or request.dnid or request.extension
        changes: dict[str, Any] = {}
        if requirements.dialled is None and dialled:
            changes["dialled"] = dialled
        if requirements.caller_num is None and request.caller_num:
            changes["caller_num"] = request.caller_num
        return (replace(requirements, **changes) if changes else requirements), dialled

    def _floor(self, req: Requirements, prev: PreviousCall | None,
               moved: bool = False) -> tuple[Requirements, Floor]:  # fmt: skip
        """`moved`: the caller was transferred here (no repeat caller of the operator who did)."""
        s = self._skills
        if s is None:
            return req, Floor()
        if prev is None and s.recent is not None and req.caller_num and not req.card and not moved:
            prev = s.recent.by_caller(req.caller_num)
        last_queue = None
        if prev is not None:
            req = replace(req, repeat_of=req.repeat_of or prev.card)
            last_queue = s.floor.free_personal_queue(prev.interface)
        return req, Floor(staffed=s.floor.staffed(), last_agent_queue=last_queue)

    async def route(self, request: AgiRequest, requirements: Requirements) -> RouteResult:
        """Decide and open the card. Waits only where bounded: a quoted card not in the
        recent-calls cache is read from the database within its time limit, and the
        engineers' hook runs within its own."""
        req, dialled = self._complete(request, requirements)
        s = self._skills
        prev = None
        if s is not None and s.recent is not None and req.card:
            prev = await s.recent.by_card(req.card)
        req, floor = self._floor(req, prev, moved=self._tracker.transferred(request.uniqueid))
        decision = decide(req, self._table, floor)
        if s is not None and s.hook is not None:
            decision = await s.hook.decide(HookCall(
                request.uniqueid, request.channel, request.caller_num, request.caller_name,
                dialled, req, decision, floor.staffed))  # fmt: skip
        return self._open(request, req, dialled, decision)

    def _open(self, request: AgiRequest, req: Requirements, dialled: str,
              decision: RouteDecision) -> RouteResult:  # fmt: skip
        card = self._tracker.open_routed(
            uniqueid=request.uniqueid,
            channel=request.channel,
            caller_num=request.caller_num,
            caller_name=request.caller_name,
            dialled=dialled,
            decision=decision,
            repeat_of=req.repeat_of or req.card,
        )
        s = self._skills
        if s is not None:
            notes: dict[str, Any] = {}
            if decision.last_agent_queue:
                notes["last_agent_hit"] = False  # set to true when that operator answers
            if decision.escalation:
                notes["escalation"] = "->".join([*decision.escalation,
                                                 decision.queue or _step(decision)])  # fmt: skip
            if notes:
                s.cards.submit(CardWrite(card, notes))
        return RouteResult(decision=decision, card=card)


def _step(decision: RouteDecision) -> str:
    """Where an unstaffed call went when it was not queued."""
    return decision.feature_step.kind if decision.feature_step else "voicemail"

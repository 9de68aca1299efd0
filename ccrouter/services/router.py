"""The route service behind the `route` AGI script: requirements -> decision -> card."""

from __future__ import annotations

from ccrouter.agi.scripts.route import RouteResult
from ccrouter.agi.session import AgiRequest
from ccrouter.config import Settings
from ccrouter.domain.routing import Requirements, RoutingTable, TargetSpec, decide
from ccrouter.services.tracker import CallTracker


def routing_table(settings: Settings) -> RoutingTable:
    specs = {
        t.name: TargetSpec(t.name, t.queue_name, t.product, t.language, t.timeout_s)
        for t in settings.targets
    }
    r = settings.routing
    return RoutingTable(
        targets={(s.product, s.language): s for s in specs.values()},
        default_target=specs[r.default_target],
        default_product=r.default_product,
        default_language=r.default_language,
        did=dict(r.did),
    )


class Router:
    def __init__(self, table: RoutingTable, tracker: CallTracker) -> None:
        self._table = table
        self._tracker = tracker

    def route(self, request: AgiRequest, requirements: Requirements) -> RouteResult:
        dialled = requirements.dialled or request.dnid or request.extension
        if requirements.dialled is None and dialled:
            requirements = Requirements(
                product=requirements.product,
                language=requirements.language,
                dialled=dialled,
                priority=requirements.priority,
                card=requirements.card,
            )
        decision = decide(requirements, self._table)
        card = self._tracker.open_routed(
            uniqueid=request.uniqueid,
            channel=request.channel,
            caller_num=request.caller_num,
            caller_name=request.caller_name,
            dialled=dialled,
            decision=decision,
            repeat_of=requirements.card,
        )
        return RouteResult(decision=decision, card=card)

"""`install(app)`: skill-based routing wired into the daemon."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from ccrouter.calls.model.cards import CardWrite
from ccrouter.db.engine import is_postgresql
from ccrouter.db.notify import OPERATOR_STATE, listen
from ccrouter.dialplan import PERSONAL_QUEUE_PREFIX
from ccrouter.pbx import events as ev
from ccrouter.routing.hook import RouteHook, load_hook
from ccrouter.routing.membership import MembershipService
from ccrouter.routing.recent import PreviousCall, RecentCalls
from ccrouter.routing.state import OperatorService, OperatorStore
from ccrouter.routing.table import all_target_skills

if TYPE_CHECKING:
    from ccrouter.runtime import Daemon

log = structlog.get_logger(__name__)


async def install(app: Daemon) -> None:
    s = app.settings
    r = s.routing
    targets = all_target_skills(s)
    operators = OperatorService(s, OperatorStore(app.engine))
    membership = MembershipService(s, operators, app.ami, targets)
    await membership.load()
    recent = RecentCalls(r.last_agent.window_h * 3600, r.last_agent.lookup_timeout_ms / 1000,
                         app.store.get)  # fmt: skip
    warmed = await recent.warm(app.engine)
    hook = None
    if r.hook:
        queues = {t.queue_name for t in s.targets} | {r.fallback_queue or ""}
        hook = RouteHook(load_hook(r.hook), r.hook_timeout_ms / 1000, queues - {""})
    app.router.use_skills(membership, app.writer, recent=recent, hook=hook)

    def on_event(event: ev.DomainEvent) -> None:
        if not isinstance(event, ev.AgentAnswered):
            return
        call = app.tracker.book.find(uniqueid=event.chan.uniqueid, linkedid=event.chan.linkedid)
        if call is None:
            return
        recent.remember(PreviousCall(call.card, event.interface, call.caller_num, event.at))
        if event.queue.startswith(PERSONAL_QUEUE_PREFIX):
            app.writer.submit(CardWrite(call.card, {"last_agent_hit": True}))

    app.tracker.subscribe(membership.on_event)
    app.tracker.subscribe(on_event)
    app.resync_hooks.append(membership.resync)
    app.spawn("membership", membership.run())
    if is_postgresql(app.engine):  # changes through any instance reach this node's holder now
        app.spawn("operator_state_listener",
                  listen(app.engine, OPERATOR_STATE, membership.wake))  # fmt: skip
    # The HTTP API (and tests) reach the services here.
    app.operators = operators
    app.membership = membership
    log.info("routing_installed", targets=len(targets), operators=len(operators.ids),
             recent_calls=warmed, hook=r.hook or None)  # fmt: skip

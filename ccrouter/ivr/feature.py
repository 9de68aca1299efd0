"""`install(app)`: the IVR and survey AGI scripts, wired to the app's tracker, router and store."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import structlog

from ccrouter.calls.tracker import CallTracker
from ccrouter.dialplan import SCRIPT_IVR, SCRIPT_SURVEY
from ccrouter.ivr.agi import ivr
from ccrouter.ivr.incidents import IncidentService
from ccrouter.ivr.service import IvrService
from ccrouter.ivr.survey import survey
from ccrouter.routing.hook import load_hook

if TYPE_CHECKING:
    from ccrouter.runtime import Daemon

log = structlog.get_logger(__name__)


class TrackerCalls:
    """The survey's view of the tracker: was the call answered; note the rating."""

    def __init__(self, tracker: CallTracker) -> None:
        self._tracker = tracker

    def answered(self, uniqueid: str) -> bool:
        call = self._tracker.book.find(uniqueid=uniqueid)
        return call is not None and call.answered

    def note(self, uniqueid: str, fields: Mapping[str, Any], outcome: str = "") -> None:
        self._tracker.note(uniqueid, fields, outcome)


async def install(app: Daemon, *, clock: Callable[[], float] = time.time) -> None:
    """`clock`: what the IVR takes for now (business hours); the demo plays a day with it."""
    s = app.settings
    if s.ivr.enabled:
        incidents = IncidentService(app.engine, s.products)
        hook = load_hook(s.ivr.account_hook, "ivr.account_hook") if s.ivr.account_hook else None
        service = IvrService(s, app.tracker, app.router, app.store, incidents,
                             app.ivr_ends,
                             clock=clock, account_hook=hook)  # fmt: skip
        app.scripts[SCRIPT_IVR] = functools.partial(ivr, service=service)
    if s.survey.enabled:
        app.scripts[SCRIPT_SURVEY] = functools.partial(
            survey, settings=s.survey, calls=TrackerCalls(app.tracker)
        )
    log.info("ivr_installed", ivr=s.ivr.enabled, menus=len(s.ivr.menus),
             survey=s.survey.enabled, lines_with_hours=sorted(s.hours),
             account_hook=s.ivr.account_hook)  # fmt: skip

"""The recordings feature: the card's recording from AMI, and the daily prune job.

Its endpoints are `ccrouter.recordings.http.site` (added to the site by `ccrouter.app`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ccrouter.recordings.prune import daily
from ccrouter.recordings.service import RecordingService
from ccrouter.recordings.store import RecordingStore

if TYPE_CHECKING:
    from ccrouter.runtime import Daemon


async def install(app: Daemon) -> None:
    s = app.settings.recordings
    store = RecordingStore(app.engine)
    book = app.tracker.book

    def live_card(uniqueid: str) -> str | None:
        call = book.find(uniqueid=uniqueid)
        return call.card if call is not None else None

    service = RecordingService(store, s, note=app.tracker.note, live_card=live_card)
    app.tracker.subscribe(service.on_event)  # also when disabled: a dialplan of your own records
    app.spawn("recordings", service.run())
    if s.enabled:
        app.spawn("recordings_prune", daily(store, s))

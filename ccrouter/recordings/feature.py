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
    service = RecordingService(store, s, note=app.tracker.note)
    app.tracker.subscribe(service.on_event)  # also when disabled: a dialplan of your own records
    app.spawn("recordings", service.run())
    if s.enabled:
        app.spawn("recordings_prune", daily(store, s))

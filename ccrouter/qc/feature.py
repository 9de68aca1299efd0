"""The qc feature: follows the operators' channels and the listening sessions from AMI.

Its endpoints are `ccrouter.qc.http.site` (added to the site by `ccrouter.app`); they reach
the listening service as `daemon.qc`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ccrouter.qc.spy import SpyService
from ccrouter.qc.store import QcStore

if TYPE_CHECKING:
    from ccrouter.runtime import Daemon


async def install(app: Daemon) -> None:
    service = SpyService(QcStore(app.engine), app.ami, app.tracker.book)
    app.tracker.subscribe(service.on_event)
    app.qc = service
    app.spawn("qc_spy", service.run())

"""The scheduled reports' wiring: with `reports.schedules` and a `mail.host`, the service
(`DigestService`) runs in the daemon. In a cluster every node's daemon runs one: the claim in
the database lets exactly one of them send each run."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ccrouter.digest.service import DigestService

if TYPE_CHECKING:
    from ccrouter.runtime import Daemon


async def install(app: Daemon, *, clock: Callable[[], float] = time.time) -> None:
    s = app.settings
    if not s.reports.schedules or not s.mail.host:
        return
    app.spawn("report_schedules", DigestService(s, app.engine, clock=clock).run())

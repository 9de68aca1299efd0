"""The callback feature: automatic callback of abandoned calls and scheduled outbound calls.

`install(app)` wires `CallbackService` (ccrouter.callbacks.service) into the app: it listens to
the tracker, resyncs members and in-flight attempts after every AMI connect, runs its dispatch
task, publishes its backlog (a gauge: the metric and the `callback_backlog_above` alert kind),
ends the IVR on request (`app.ivr_ends["callback"]`) and publishes the request API as
`app.services["callbacks"]`:

    await app.services["callbacks"].request(number, target="wallet-ru", language="ru",
                                            product="wallet", card=card, place_at=joined_at)
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ccrouter.callbacks.agi import IvrCallbackEnd, callback_offer
from ccrouter.callbacks.config import callback_settings
from ccrouter.callbacks.model import Hours, LineHours
from ccrouter.callbacks.service import CallbackService
from ccrouter.callbacks.store import CallbackStore
from ccrouter.config import Settings
from ccrouter.dialplan import SCRIPT_CALLBACK_OFFER
from ccrouter.runtime import Gauge

if TYPE_CHECKING:
    from ccrouter.runtime import Daemon


def hours(settings: Settings) -> LineHours:
    """Each target is open when its product line is (`hours:` in the config)."""
    return LineHours({p: h.schedule() for p, h in settings.hours.items()},
                     {t.name: t.product for t in settings.targets})  # fmt: skip


def feature(*, line_hours: Hours | None = None) -> Callable[[Daemon], Awaitable[None]]:
    """The feature's install function (tests pass their own business hours)."""

    async def install(app: Daemon) -> None:
        cs = callback_settings(app.settings)
        if not cs.enabled:
            return
        node = app.settings.asterisk
        store = CallbackStore(app.engine, node=node.node, unnamed=node.owns_unnamed)
        service = CallbackService(
            app.settings, store, app.tracker, app.ami, app.writer,
            app.numbers.next, hours=line_hours or hours(app.settings),
        )  # fmt: skip
        app.services["callbacks"] = service
        app.gauges.append(Gauge("ccrouter_callback_queue_depth", "Callback requests waiting",
                                service.backlog, alert_kind="callback_backlog_above",
                                alert_what="callback requests waiting"))  # fmt: skip
        app.scripts[SCRIPT_CALLBACK_OFFER] = functools.partial(
            callback_offer, callbacks=service, book=app.tracker.book,
            target_of_queue={t.queue_name: t.name for t in app.settings.targets},
            confirm_prompt=cs.offer.confirm_prompt,
            offer_prompt=cs.offer.prompt,
            offer_key=cs.offer.key, cards=app.writer,
        )  # fmt: skip
        app.ivr_ends["callback"] = IvrCallbackEnd(service, cs.offer.confirm_prompt)
        app.tracker.subscribe(service.on_event)
        app.resync_hooks.append(service.resync)
        app.spawn("callbacks", service.run())

    return install


install = feature()

__all__ = ["CallbackService", "CallbackStore", "feature", "hours", "install"]

"""The helpdesk feature's wiring: with `helpdesk.url` set, the connector (headers read from
the environment now), the store, the service (`daemon.helpdesk`) and its outbox worker."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ccrouter.config.helpdesk import HelpdeskSettings
from ccrouter.helpdesk.connector import JsonWebhook
from ccrouter.helpdesk.service import HelpdeskService
from ccrouter.helpdesk.store import HelpdeskStore

if TYPE_CHECKING:
    from ccrouter.runtime import Daemon


class MissingHeader(Exception):
    pass


def headers(h: HelpdeskSettings, environ: Mapping[str, str]) -> dict[str, str]:
    """The fixed headers and those from the environment; a variable that is not set is an
    error naming it (a helpdesk that would answer 401 to every ticket)."""
    out = dict(h.headers)
    for name, var in h.headers_env.items():
        if var not in environ:
            raise MissingHeader(f"helpdesk.headers_env.{name}: environment variable {var} "
                                "is not set")  # fmt: skip
        out[name] = environ[var]
    return out


async def install(app: Daemon) -> None:
    h = app.settings.helpdesk
    if not h.url:
        return
    connector = JsonWebhook(h.url, h.secret, headers=headers(h, os.environ),
                            signature_header=h.signature_header, timeout_s=h.timeout_s)  # fmt: skip
    service = HelpdeskService(app.settings, HelpdeskStore(app.engine), app.writer,
                              app.store.get, connector)  # fmt: skip
    app.helpdesk = service
    app.spawn("helpdesk", service.run())

"""Admin config reload: re-read and validate the config file, apply what can change at run time,
and say what needs a restart.

An invalid file changes nothing: the answer lists every error as `file:line: key: message`.
Applied at once: operators (names, interfaces, configured skills — the web API, screen pops and
any service that offers `reconfigure(settings)`), alerts (rules, thresholds), reports
(SL threshold, timezone, card deadline), teams, http.mask_numbers_for / keepalive_s.
Everything else is compared and listed under `restart_required` (sockets, database, the
AGI/AMI links, log setup, and sections whose owners were built from the settings at start and
offer no `reconfigure`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

import structlog
from aiohttp import web

from ccrouter.config import Settings, check_settings, load_settings
from ccrouter.web.api import ADMIN, ApiError, Call, Endpoint

if TYPE_CHECKING:
    from ccrouter.web.context import WebContext

log = structlog.get_logger(__name__)

WEB_APPLIED: Final = frozenset({"operators", "alerts", "reports", "http.mask_numbers_for",
                                "http.keepalive_s", "teams"})
"""Sections (dotted) the web feature applies itself."""
SERVICES: Final = ("router", "operators", "membership")
"""App attributes whose service is asked to `reconfigure(settings)` when it offers it (so is
every service a feature publishes in `app.services`)."""


class Reconfigurable(Protocol):
    def reconfigure(self, settings: Settings) -> Iterable[str] | None: ...


@dataclass(frozen=True, slots=True)
class ReloadResult:
    ok: bool
    errors: tuple[str, ...] = ()
    applied: tuple[str, ...] = ()
    restart_required: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        if not self.ok:
            return {"error": "invalid_config", "message": "the config file is invalid: "
                    "nothing was changed", "errors": list(self.errors)}
        return {"applied": list(self.applied), "restart_required": list(self.restart_required),
                "changed": bool(self.applied or self.restart_required)}


def changed_sections(old: Settings, new: Settings) -> list[str]:
    """Dotted names of what differs: top-level sections, and `http.*` field by field."""
    a, b = old.model_dump(mode="json"), new.model_dump(mode="json")
    out: list[str] = []
    for key in type(old).model_fields:
        if a.get(key) == b.get(key):
            continue
        if key == "http":
            out += [f"http.{k}" for k in a[key] if a[key].get(k) != b[key].get(k)]
        else:
            out.append(key)
    return out


class Reloader:
    def __init__(self, ctx: WebContext, path: Path | None) -> None:
        self.ctx, self.path = ctx, path
        self._lock = asyncio.Lock()

    async def reload(self) -> ReloadResult:
        assert self.path is not None
        async with self._lock:
            path = self.path
            errors = await asyncio.to_thread(check_settings, path)
            if errors:
                log.warning("config_reload_refused", path=str(path), errors=len(errors))
                return ReloadResult(False, tuple(str(e) for e in errors))
            new = await asyncio.to_thread(load_settings, path)
            return self._apply(new)

    def _apply(self, new: Settings) -> ReloadResult:
        ctx = self.ctx
        old = ctx.settings
        changed = changed_sections(old, new)
        applied = [c for c in changed if c in WEB_APPLIED]
        restart = [c for c in changed if c not in WEB_APPLIED]
        if "alerts" in changed:
            if ctx.alerts is None or (new.alerts.webhook.url and not old.alerts.webhook.url):
                restart.append("alerts (the alert service or its webhook sender was not "
                               "started)")
            if ctx.alerts is not None:
                ctx.alerts.reconfigure(new.alerts, new.reports.timezone)
        ctx.settings = new
        published = getattr(ctx.app, "services", {})
        for svc in [*(getattr(ctx.app, name, None) for name in SERVICES), *published.values()]:
            fn = getattr(svc, "reconfigure", None)
            if callable(fn) and changed:
                taken = fn(new) or ()
                for section in taken:
                    if section in restart:
                        restart.remove(section)
                    applied.append(section)
        if "operators" in changed and not any(
            callable(getattr(getattr(ctx.app, n, None), "reconfigure", None))
            for n in ("operators", "router")
        ):
            restart.append("operators (routing: configured skills of operators with no "
                           "override are used from the next start)")
        for hook in ctx.reload_hooks:
            hook(new)
        log.info("config_reloaded", path=str(self.path), applied=applied, restart=restart)
        return ReloadResult(True, (), tuple(dict.fromkeys(applied)),
                            tuple(dict.fromkeys(restart)))


CONFIG_ENV: Final = "CCROUTER_CONFIG"
"""Where the reload finds the config file when the feature was not given its path
(`ccrouter run` sets it)."""


def reload_endpoint(reloader: Reloader) -> Endpoint:
    async def handle(_: Call) -> Any:
        if reloader.path is None:
            raise ApiError(409, f"no config file to reload: ccrouter was started without one "
                           f"(set {CONFIG_ENV})")
        result = await reloader.reload()
        if not result.ok:
            return web.json_response(result.as_dict(), status=400)
        return result.as_dict()

    return Endpoint("POST", "/api/v1/admin/reload", "Re-read and validate the config file; "
                    "apply what can change at run time, list what needs a restart (admin)",
                    handle, ADMIN)

"""The web feature: the aiohttp site (API, streams, pages, /healthz, /metrics), the live model
fed by the tracker, the screen pop and wallboard publishers. The features' endpoints (and the
reports and alerts the wallboard shows) come from `daemon.site_parts`.

    web = WebFeature()
    app = App(settings, features=[..., web])   # web.address is the bound (host, port)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import structlog
from aiohttp import web

from ccrouter.calls.model.cards import CARD_FIELDS
from ccrouter.calls.model.live import LiveCall
from ccrouter.db.dialect import insert_for
from ccrouter.db.tables import meta
from ccrouter.pbx import events as ev
from ccrouter.pbx.agi.server import ListenError, Script
from ccrouter.pbx.agi.session import AgiSession
from ccrouter.pbx.ami.translate import member_from_status_item
from ccrouter.web import cards, live_routes
from ccrouter.web.api import Auth, Endpoint, add_routes, errors_middleware
from ccrouter.web.auth import Role, TokenStore
from ccrouter.web.context import WebContext, card_out
from ccrouter.web.live import LATENCY_BUCKETS, Histogram, LiveModel
from ccrouter.web.metrics import CONTENT_TYPE, AppCollector, registry, render
from ccrouter.web.openapi import document
from ccrouter.web.reload import CONFIG_ENV, Reloader, reload_endpoint
from ccrouter.web.streams import Hub
from ccrouter.web.wallboard import OperatorsJson, splice

if TYPE_CHECKING:
    from ccrouter.pbx.ami.connection import AmiClient
    from ccrouter.runtime import Daemon

log = structlog.get_logger(__name__)

STATIC: Final = Path(__file__).parent / "static"
PUBLIC: Final = (
    ("GET", "/healthz", "Health: AMI connected, database writable (503 when not)"),
    ("GET", "/metrics", "Prometheus metrics"),
    ("GET", "/api/v1/openapi.json", "This document"),
    ("GET", "/", "Index of the pages"),
    ("GET", "/wallboard", "The wallboard page"),
    ("GET", "/operator", "The operator page (screen pop, topic/resolution form)"),
    ("GET", "/card", "A card's page (?number=): its recording, listening sessions, QC grades"),
)
KPI_REFRESH_S: Final = 10.0
WALLBOARD_TICK_S: Final = 0.2


def timed(script: Script, hist: Histogram) -> Script:
    @functools.wraps(script)
    async def run(session: AgiSession) -> None:
        t0 = time.perf_counter()
        try:
            await script(session)
        finally:
            hist.observe(time.perf_counter() - t0)

    return run


class WebFeature:
    def __init__(self, config_path: Path | None = None) -> None:
        self.config_path = config_path
        """The file `POST /api/v1/admin/reload` re-reads (default: $CCROUTER_CONFIG)."""
        self.address: tuple[str, int] = ("", 0)
        self.ctx: WebContext | None = None
        self._pops: asyncio.Queue[tuple[str, str, str, dict[str, Any]]] = asyncio.Queue(1000)
        self._kpi_today: dict[str, dict[str, Any]] = {}
        self._operators_json = OperatorsJson()
        self.endpoints: list[Endpoint] = []
        self.web_app = web.Application(middlewares=[errors_middleware], client_max_size=64 * 1024)

    async def __call__(self, app: Daemon) -> None:
        s = app.settings
        queues = [t.queue_name for t in s.targets]
        ctx = WebContext(app, s, LiveModel(queues, s.calls.short_abandon_s), Hub())
        self.ctx = ctx
        latency = Histogram(LATENCY_BUCKETS)
        for name, script in list(app.scripts.items()):
            app.scripts[name] = timed(script, latency)
        app.tracker.subscribe(self._on_event)
        app.resync_hooks.append(self._resync)
        self.endpoints = [*cards.endpoints(ctx), *live_routes.endpoints(ctx)]
        for part in app.site_parts:
            self.endpoints += await part(app, ctx)
        env_path = os.environ.get(CONFIG_ENV)
        path = self.config_path or (Path(env_path) if env_path else None)
        self.endpoints.append(reload_endpoint(Reloader(ctx, path)))
        auth = Auth(TokenStore(app.engine), {o.id: o.interface for o in s.operators},
                    s.http.mask_numbers_for)
        ctx.reload_hooks.append(lambda new: auth.reconfigure(
            {o.id: o.interface for o in new.operators}, new.http.mask_numbers_for))
        web_app = self.web_app
        add_routes(web_app, self.endpoints, auth)
        reg = registry(AppCollector(ctx, latency, self._callback_depth))
        signed = [(m, p, summary) for m, p, summary, _ in ctx.self_authenticated]
        openapi = document(self.endpoints, [*PUBLIC, *signed])

        async def healthz(_: web.Request) -> web.Response:
            return await self._health()

        async def metrics(_: web.Request) -> web.Response:
            return web.Response(body=render(reg), headers={"Content-Type": CONTENT_TYPE})

        async def spec(_: web.Request) -> web.Response:
            return web.json_response(openapi)

        def page(name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
            async def serve(_: web.Request) -> web.StreamResponse:
                return web.FileResponse(STATIC / name)

            return serve

        web_app.router.add_get("/healthz", healthz)
        web_app.router.add_get("/metrics", metrics)
        web_app.router.add_get("/api/v1/openapi.json", spec)
        web_app.router.add_get("/", page("index.html"))
        web_app.router.add_get("/wallboard", page("wallboard.html"))
        web_app.router.add_get("/operator", page("operator.html"))
        web_app.router.add_get("/card", page("card.html"))
        for method, route, _, handler in ctx.self_authenticated:
            web_app.router.add_route(method, route, handler)
        web_app.router.add_static("/static", STATIC)
        runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()

        async def stop() -> None:
            ctx.hub.close()
            await runner.cleanup()

        app.stop_hooks.append(stop)  # before the bind: App.stop() undoes a failed one too
        self.address = await self._listen(runner, s.http.host, s.http.port)
        app.spawn("web_screen_pop", self._screen_pop())
        app.spawn("web_wallboard", self._wallboard())
        log.info("http_listening", host=self.address[0], port=self.address[1])

    @staticmethod
    async def _listen(runner: web.AppRunner, host: str, port: int) -> tuple[str, int]:
        """Bind the HTTP site; the bound (host, port). A port in use is a ListenError naming it."""
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            raise ListenError.of(exc, host, port) from exc
        sockets = getattr(site._server, "sockets", None) or []
        if not sockets:
            return host, port
        bound_host, bound_port = sockets[0].getsockname()[:2]
        return str(bound_host), int(bound_port)

    # --- live inputs ------------------------------------------------------------------------

    def _on_event(self, e: ev.DomainEvent) -> None:
        ctx = self.ctx
        assert ctx is not None
        ctx.live.apply(e)
        if isinstance(e, ev.AgentRinging | ev.AgentAnswered):
            op = ctx.operator_by_interface(e.interface)
            call = ctx.app.tracker.book.find(uniqueid=e.chan.uniqueid, linkedid=e.chan.linkedid)
            if op is not None and call is not None:
                phase = "ringing" if isinstance(e, ev.AgentRinging) else "connected"
                with contextlib.suppress(asyncio.QueueFull):
                    self._pops.put_nowait((op.id, call.card, phase, live_card_fields(call)))

    async def _resync(self, ami: AmiClient) -> None:
        ctx = self.ctx
        assert ctx is not None
        items = await ami.send({"Action": "QueueStatus"}, as_list=True)
        now = time.time()
        members, waiting, queues = [], [], []
        for m in items:
            kind = m.get("Event")
            if kind == "QueueMember":
                members.append(member_from_status_item(m, now))
            elif kind == "QueueEntry":
                wait = float(m.get("Wait") or 0)
                waiting.append((str(m.get("Queue")), str(m.get("Uniqueid")), now - wait))
            elif kind == "QueueParams":
                queues.append(str(m.get("Queue")))
        ctx.live.load_status(members, waiting, queues)

    def _callback_depth(self) -> int | None:
        svc = self.ctx.app.callbacks if self.ctx else None
        fn = getattr(svc, "backlog", None)
        return int(fn()) if callable(fn) else None

    # --- publishers -------------------------------------------------------------------------

    async def _screen_pop(self) -> None:
        ctx = self.ctx
        assert ctx is not None
        while True:
            op_id, number, phase, live = await self._pops.get()
            masked = Role.OPERATOR.value in ctx.settings.http.mask_numbers_for
            try:
                card, history = await self._pop_cards(number, live)
                ctx.hub.publish(live_routes.operator_topic(op_id), "pop", {
                    "phase": phase, "card": card_out(card, masked),
                    "history": [card_out(c, masked) for c in history],
                }, retain=True)
            except Exception:
                log.exception("screen_pop_failed", operator=op_id, card=number)

    async def _pop_cards(
        self, number: str, live: dict[str, Any]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The popped card and the caller's last 5 others, without flushing the card writer
        (a flush per pop would defeat its group commit): the committed row, if any, overlaid
        with the tracker's live state of the call; one query for the card and its history."""
        ctx = self.ctx
        assert ctx is not None
        caller = live.get("caller_num") or ""
        if caller:
            recent = await ctx.app.store.recent_by_caller(caller, 0.0, 7)
        else:
            row = await ctx.app.store.get(number)
            recent = [row] if row is not None else []
        committed = next((c for c in recent if c["number"] == number), None)
        history = [c for c in recent if c["number"] != number][:5]
        card: dict[str, Any] = dict.fromkeys(sorted(CARD_FIELDS))
        card.update(committed or {})
        card.update(live)
        card["number"] = number
        return card, history

    async def _wallboard(self) -> None:
        ctx = self.ctx
        assert ctx is not None
        seen: tuple[int, int, int] = (-1, -1, -1)
        next_kpi = next_push = 0.0
        while True:
            now = time.monotonic()
            if now >= next_kpi:
                next_kpi = now + KPI_REFRESH_S
                await self._refresh_kpi()
            if not ctx.hub.subscribers(live_routes.WALLBOARD):
                ctx.hub.forget(live_routes.WALLBOARD)  # nobody watches: build nothing
                seen = (-1, -1, -1)
            else:
                alerts = len(ctx.alerts.active()) if ctx.alerts else 0
                state = (ctx.live.version, len(ctx.app.tracker.book), alerts)
                if state != seen or now >= next_push:
                    seen, next_push = state, now + 2.0
                    masked = Role.SUPERVISOR.value in ctx.settings.http.mask_numbers_for
                    ctx.hub.publish_text(live_routes.WALLBOARD, "snapshot",
                                         self.snapshot_text(masked), retain=True)
            await asyncio.sleep(WALLBOARD_TICK_S)

    async def _refresh_kpi(self) -> None:
        ctx = self.ctx
        assert ctx is not None
        if ctx.reports is None:
            return
        try:
            self._kpi_today = await ctx.reports.today(time.time())
        except Exception:
            log.exception("wallboard_kpi_failed")

    def snapshot_text(self, masked: bool = False) -> str:
        """The wallboard snapshot as JSON text; the operators array comes from a cache that
        rebuilds only the operators that changed."""
        ctx = self.ctx
        assert ctx is not None
        queues = []
        keys = ("offered", "answered", "abandoned", "sl", "asa_s", "aar")
        for q in live_routes.queues(ctx):
            k = self._kpi_today.get(q["queue"], {})
            queues.append({**q, "today": {key: k.get(key) for key in keys}})
        return splice({
            "at": time.time(),
            "ami_connected": ctx.app.ami.connected,
            "queues": queues,
            "calls": live_routes.calls(ctx, masked=masked),
            "alerts": [dataclasses.asdict(a) for a in (ctx.alerts.active() if ctx.alerts else [])],
            "sl_threshold_s": ctx.settings.reports.sl_threshold_s,
        }, {"operators": self._operators_json.text(ctx.live, ctx.settings.operators)})

    async def _health(self) -> web.Response:
        ctx = self.ctx
        assert ctx is not None
        app = ctx.app
        db_ok, error = True, None
        try:
            async with asyncio.timeout(2.0), app.engine.begin() as conn:
                ins = insert_for(conn, meta).values(key="web_health", value=str(time.time()))
                await conn.execute(ins.on_conflict_do_update(
                    index_elements=[meta.c.key], set_={"value": ins.excluded.value}))
        except Exception as exc:
            db_ok, error = False, repr(exc)[:200]
        w = app.writer.stats
        body = {
            "status": "ok" if db_ok and app.ami.connected else "degraded",
            "ami_connected": app.ami.connected,
            "ami_disconnected_since": app.ami.disconnected_since,
            "db_writable": db_ok, "db_error": error,
            "card_queue_depth": w.queue_depth, "card_write_failures": w.failures,
        }
        return web.json_response(body, status=200 if body["status"] == "ok" else 503)


def live_card_fields(call: LiveCall) -> dict[str, Any]:
    """What the tracker knows of a live call, in card columns (newer than the committed row)."""
    out: dict[str, Any] = {"uniqueid": call.uniqueid, "started_at": call.started_at}
    for key in ("linkedid", "channel", "caller_num", "caller_name", "queue", "operator",
                "interface"):
        value = getattr(call, key)
        if value:
            out[key] = value
    return out


async def install(app: Daemon) -> None:
    """The feature for `default_features()`."""
    await WebFeature()(app)

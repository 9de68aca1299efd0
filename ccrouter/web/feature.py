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
from ccrouter.config import Settings
from ccrouter.db.dialect import insert_for
from ccrouter.db.tables import meta
from ccrouter.pbx import events as ev
from ccrouter.pbx.agi.server import ListenError, Script
from ccrouter.pbx.agi.session import AgiSession
from ccrouter.pbx.ami.translate import member_from_status_item
from ccrouter.web import cards, live_routes
from ccrouter.web.api import Auth, Endpoint, add_routes, dumps, errors_middleware
from ccrouter.web.auth import Role, TokenStore
from ccrouter.web.cluster_live import ClusterLive
from ccrouter.web.context import WebContext, card_out
from ccrouter.web.guard import scope_guard
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
        self._kpi_teams: dict[str, dict[str, Any]] = {}
        self._on_call: dict[str, tuple[str, dict[str, Any]]] = {}
        """Operator id -> the card of the call they are connected to (for the "ended" pop)."""
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
        auth = Auth(TokenStore(app.engine), s)
        ctx.reload_hooks.append(auth.reconfigure)
        web_app = self.web_app
        add_routes(web_app, self.endpoints, auth, scope_guard(ctx))
        reg = registry(AppCollector(ctx, latency, app.gauges))
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
        if s.cluster.enabled:  # every node's live rows on every node's site
            live = ClusterLive(app.engine, s.asterisk.node, s.cluster.instance)
            ctx.cluster_live = live
            app.spawn("web_cluster_live", live.run(lambda: live_routes.snapshot(ctx)))
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
                live = live_card_fields(call)
                if phase == "connected":
                    self._on_call[op.id] = (call.card, live)
                with contextlib.suppress(asyncio.QueueFull):
                    self._pops.put_nowait((op.id, call.card, phase, live))
        elif isinstance(e, ev.AgentFinished):
            op = ctx.operator_by_interface(e.interface)
            was = self._on_call.pop(op.id, None) if op is not None else None
            if op is not None and was is not None:  # the page counts down to the deadline
                with contextlib.suppress(asyncio.QueueFull):
                    self._pops.put_nowait((op.id, was[0], "ended", {**was[1], "ended_at": e.at}))

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
                    "card_deadline_s": ctx.settings.reports.card_deadline_s,
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
        seen: dict[str, tuple[int, int, int]] = {}
        next_push: dict[str, float] = {}
        next_kpi = 0.0
        while True:
            now = time.monotonic()
            if now >= next_kpi:
                next_kpi = now + KPI_REFRESH_S
                await self._refresh_kpi()
            boards: list[tuple[str, frozenset[str] | None]] = [
                (live_routes.WALLBOARD, None), *ctx.team_boards.items()]
            for topic, teams in boards:
                if not ctx.hub.subscribers(topic):
                    ctx.hub.forget(topic)  # nobody watches: build nothing
                    seen.pop(topic, None)
                    continue
                alerts = len(ctx.alerts.active()) if ctx.alerts else 0
                state = (ctx.live.version, len(ctx.app.tracker.book), alerts)
                if state != seen.get(topic) or now >= next_push.get(topic, 0.0):
                    seen[topic], next_push[topic] = state, now + 2.0
                    masked = Role.SUPERVISOR.value in ctx.settings.http.mask_numbers_for
                    ctx.hub.publish_text(topic, "snapshot", self.snapshot_text(masked, teams),
                                         retain=True)  # fmt: skip
            await asyncio.sleep(WALLBOARD_TICK_S)

    async def _refresh_kpi(self) -> None:
        ctx = self.ctx
        assert ctx is not None
        if ctx.reports is None:
            return
        try:
            now = time.time()
            self._kpi_today = await ctx.reports.today(now)
            teams = team_interfaces(ctx.settings)
            self._kpi_teams = await ctx.reports.today_by_team(now, teams) if teams else {}
        except Exception:
            log.exception("wallboard_kpi_failed")

    def snapshot_text(self, masked: bool = False, teams: frozenset[str] | None = None) -> str:
        """The wallboard snapshot as JSON text; the operators array comes from a cache that
        rebuilds only the operators that changed. `teams`: a team supervisor's wallboard (only
        the teams' operators and their calls, and the teams' figures)."""
        ctx = self.ctx
        assert ctx is not None
        queues = []
        keys = ("offered", "answered", "abandoned", "sl", "asa_s", "aar", "card_completion",
                "acw_s")  # fmt: skip
        for q in live_routes.queues(ctx):
            k = self._kpi_today.get(q["queue"], {})
            queues.append({**q, "today": {key: k.get(key) for key in keys}})
        calls = live_routes.calls(ctx, masked=masked)
        if teams is None:
            ops_json = self._operators_json.text(ctx.live, ctx.settings.operators)
            if ctx.cluster_live is not None and ctx.cluster_live.others:  # the other nodes'
                others = dumps(ctx.cluster_live.rows("operators"))
                ops_json = ops_json[:-1] + ("," if ops_json != "[]" else "") + others[1:]
            shown = self._kpi_teams
        else:
            members = [o for t in ctx.settings.teams if t.name in teams for o in t.operators]
            ops = [o for o in ctx.settings.operators if o.id in set(members)]
            configured = {o.interface: (o.id, o.name) for o in ops}
            ops_json = dumps([dataclasses.asdict(ctx.live.operator(o.interface, configured))
                              for o in ops])  # fmt: skip
            names = {o.interface for o in ops} | {o.name for o in ops}
            calls = [c for c in calls if c["operator"] in names or c["ringing"] in names]
            shown = {k: v for k, v in self._kpi_teams.items() if k in teams}
        return splice({
            "at": time.time(),
            "ami_connected": ctx.app.ami.connected,
            "nodes": len(ctx.settings.asterisk.names()),
            "node": ctx.settings.asterisk.node,
            "queues": queues,
            "calls": calls,
            "alerts": [dataclasses.asdict(a) for a in (ctx.alerts.active() if ctx.alerts else [])],
            "sl_threshold_s": ctx.settings.reports.sl_threshold_s,
            "card_deadline_s": ctx.settings.reports.card_deadline_s,
            "teams": [{"team": k, "today": {key: v.get(key) for key in keys}}
                      for k, v in shown.items()],
            "team_view": sorted(teams) if teams is not None else None,
        }, {"operators": ops_json})

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


def team_interfaces(settings: Settings) -> dict[str, list[str]]:
    """Team name -> its operators' interfaces."""
    iface = {o.id: o.interface for o in settings.operators}
    return {t.name: [iface[o] for o in t.operators if o in iface] for t in settings.teams}


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

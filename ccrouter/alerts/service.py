"""Alerts: evaluate the configured rules every `alerts.evaluate_every_s`, log what fires and
resolves, persist the active set (a restart does not notify twice), and POST each notice to the
webhook with retries (an owned sender task; a slow webhook never delays evaluation).

Webhook body (JSON): {"state": "fired"|"resolved", "key", "rule", "kind", "queue", "message",
"value", "fired_at", "at"} with times as epoch seconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import aiohttp
import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.alerts.model import Alert, AlertBook, Notice, Observation, Reading, evaluate
from ccrouter.config import AlertSettings
from ccrouter.db.dialect import insert_for
from ccrouter.db.tables import alert_state
from ccrouter.reports.model import Counts

log = structlog.get_logger(__name__)

OUTBOX_MAX: Final = 1000


class LiveSource:
    """What the service reads about now (the web feature's live model and the AMI client)."""

    def __init__(
        self,
        queues: Callable[[], Sequence[str]],
        longest_wait: Callable[[], Mapping[str, float]],
        logged_in: Callable[[], Mapping[str, int]],
        ami_down_since: Callable[[], float | None],
        readings: Callable[[], Mapping[str, Reading]],
    ) -> None:
        self.queues, self.longest_wait, self.logged_in = queues, longest_wait, logged_in
        self.ami_down_since, self.readings = ami_down_since, readings


SlCounts = Callable[[float, float, Sequence[str]], Any]
"""(start, end, queues) -> awaitable of {queue: Counts} (Reports.per_queue)."""


def notice_body(n: Notice) -> dict[str, Any]:
    a = n.alert
    return {"state": n.state, "key": a.key, "rule": a.rule, "kind": a.kind, "queue": a.queue,
            "message": a.message, "value": a.value, "fired_at": a.fired_at, "at": n.at}


class AlertService:
    def __init__(
        self,
        settings: AlertSettings,
        engine: AsyncEngine,
        source: LiveSource,
        sl_counts: SlCounts,
        *,
        timezone: str = "UTC",
        clock: Callable[[], float] = time.time,
        node: str | None = None,
    ) -> None:
        """`node`: with several Asterisk nodes, the node whose holder runs this (its alerts
        carry it; another node's are its holder's)."""
        self._node = node
        self._s = settings
        self._engine = engine
        self._source = source
        self._sl_counts = sl_counts
        self._tz = zoneinfo.ZoneInfo(timezone)
        self._clock = clock
        self._book = AlertBook()
        self._outbox: asyncio.Queue[Notice] = asyncio.Queue(OUTBOX_MAX)
        self.listeners: list[Callable[[Notice], None]] = []
        self.sent = 0
        self.failed = 0

    def active(self) -> list[Alert]:
        return self._book.active()

    def reconfigure(self, settings: AlertSettings, timezone: str) -> None:
        """New rules/thresholds from a config reload; used from the next evaluation (alerts
        of a removed rule resolve then). A webhook URL set where there was none needs a
        restart (the sender task is started only with one)."""
        self._s = settings
        self._tz = zoneinfo.ZoneInfo(timezone)

    async def load(self) -> None:
        """Restore the alerts that were active when ccrouter stopped."""
        q = sa.select(alert_state).where(alert_state.c.active.is_(True))
        if self._node is not None:
            q = q.where(alert_state.c.key.startswith(f"{self._node}/", autoescape=True))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        names = {r.name for r in self._s.rules}
        alerts = [
            Alert(r.key, r.rule, (r.detail or {}).get("kind", ""), (r.detail or {}).get("queue"),
                  (r.detail or {}).get("message", ""), (r.detail or {}).get("value"), r.fired_at)
            for r in rows if r.rule in names
        ]
        self._book = AlertBook(alerts)

    async def observe(self) -> Observation:
        now = self._clock()
        queues = list(self._source.queues())
        sl: dict[str, Mapping[str, Counts]] = {}
        for rule in self._s.rules:
            if rule.kind == "sl_below":
                wanted = [rule.queue] if rule.queue else queues
                sl[rule.name] = await self._sl_counts(now - rule.window_min * 60, now, wanted)
        local = dt.datetime.fromtimestamp(now, self._tz)
        down_since = self._source.ami_down_since()
        return Observation(
            at=now,
            local_minute=local.hour * 60 + local.minute,
            queues=queues,
            sl_counts=sl,
            longest_wait=self._source.longest_wait(),
            logged_in=self._source.logged_in(),
            ami_down_s=None if down_since is None else max(0.0, now - down_since),
            readings=self._source.readings(),
        )

    async def evaluate_once(self) -> list[Notice]:
        obs = await self.observe()
        notices = self._book.update(evaluate(self._s.rules, obs, self._node), obs.at)
        if notices:
            await self._persist(notices)
        for n in notices:
            level = log.warning if n.state == "fired" else log.info
            level(f"alert_{n.state}", key=n.alert.key, rule=n.alert.rule, queue=n.alert.queue,
                  message=n.alert.message)
            for listener in self.listeners:
                listener(n)
            if self._s.webhook.url:
                try:
                    self._outbox.put_nowait(n)
                except asyncio.QueueFull:
                    self.failed += 1
                    log.error("alert_webhook_outbox_full", key=n.alert.key, state=n.state)
        return notices

    async def _persist(self, notices: Sequence[Notice]) -> None:
        async with self._engine.begin() as conn:
            for n in notices:
                a = n.alert
                detail = {"kind": a.kind, "queue": a.queue, "message": a.message,
                          "value": a.value}
                values = {"key": a.key, "rule": a.rule, "active": n.state == "fired",
                          "fired_at": a.fired_at, "detail": detail,
                          "resolved_at": n.at if n.state == "resolved" else None}
                stmt = insert_for(conn, alert_state).values(values)
                await conn.execute(stmt.on_conflict_do_update(
                    index_elements=["key"], set_={k: v for k, v in values.items() if k != "key"}))

    async def run(self) -> None:
        """Evaluate forever (a failing round is logged and retried next time)."""
        while True:
            try:
                await self.evaluate_once()
            except Exception:
                log.exception("alert_evaluation_failed")
            await asyncio.sleep(self._s.evaluate_every_s)

    async def run_webhook(self) -> None:
        """Send queued notices in order, each retried with exponential backoff."""
        hook = self._s.webhook
        timeout = aiohttp.ClientTimeout(total=hook.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                n = await self._outbox.get()
                await self._deliver(session, n)

    async def _deliver(self, session: aiohttp.ClientSession, n: Notice) -> None:
        hook = self._s.webhook
        assert hook.url is not None
        delay = hook.backoff_s
        for attempt in range(1, hook.attempts + 1):
            try:
                async with session.post(hook.url, json=notice_body(n)) as resp:
                    if resp.status < 300:
                        self.sent += 1
                        log.info("alert_webhook_sent", key=n.alert.key, state=n.state,
                                 attempt=attempt)
                        return
                    error = f"HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = repr(exc)
            log.warning("alert_webhook_failed", key=n.alert.key, state=n.state,
                        attempt=attempt, error=error)
            if attempt < hook.attempts:
                await asyncio.sleep(delay)
                delay *= 2
        self.failed += 1
        log.error("alert_webhook_gave_up", key=n.alert.key, state=n.state,
                  attempts=hook.attempts)

"""ccrouter + the PBX simulator over real sockets, for end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from ccrouter.app import App, Feature
from ccrouter.asterisk_conf import CHANNELVARS
from ccrouter.config import Settings, load_settings
from ccrouter.demo import demo_settings
from ccrouter.sim import PbxSimulator, SimOperator
from tests.conftest import ROOT

EXAMPLE = ROOT / "config" / "ccrouter.yaml"


def example_settings(**calls: Any) -> Settings:
    s = load_settings(EXAMPLE, environ={})
    fast = {"action_timeout_s": 1.0, "ping_interval_s": 0.3, "ping_timeout_s": 0.3,
            "reconnect_min_s": 0.05, "reconnect_max_s": 0.2}  # fmt: skip
    return s.model_copy(update={
        "ami": s.ami.model_copy(update=fast),
        "calls": s.calls.model_copy(update={"close_grace_s": 2.0, **calls}),
        "log": s.log.model_copy(update={"format": "json", "level": "warning"}),
    })  # fmt: skip


class Stack:
    def __init__(self, sim: PbxSimulator, app: App, settings: Settings) -> None:
        self.sim, self.app, self.settings = sim, app, settings

    async def card(self, number: str) -> dict[str, Any]:
        await self.app.writer.flush()
        card = await self.app.store.get(number)
        assert card is not None, f"card {number} not in the database"
        return card

    async def cards(self) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from ccrouter.db.tables import cards

        await self.app.writer.flush()
        async with self.app.engine.connect() as conn:
            rows = (await conn.execute(select(cards).order_by(cards.c.id))).mappings().all()
        return [dict(r) for r in rows]


async def wait_until(cond: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what or cond}") from None


def add_operator(sim: PbxSimulator, queue: str, iface: str, name: str, **kw: Any) -> None:
    sim.add_operator(SimOperator(interface=iface, **kw))
    sim.add_member(queue, iface, name=name)


@contextlib.asynccontextmanager
async def stack(
    tmp_path: Path,
    *,
    settings: Settings | None = None,
    time_scale: float = 20.0,
    features: list[Feature] | None = None,
    database_url: str | None = None,
    **sim_kw: Any,
) -> AsyncIterator[Stack]:
    """ccrouter and the simulator; the cards in a SQLite file of `tmp_path`, or at
    `database_url` (e.g. a PostgreSQL database of the `pg_server` fixture)."""
    base = settings or example_settings()
    sim_kw.setdefault("channelvars", CHANNELVARS)  # as the generated manager.conf sets it
    sim = PbxSimulator(agi_port=0, username=base.ami.username, secret="demo-secret",
                       time_scale=time_scale, noise=True, **sim_kw)  # fmt: skip
    await sim.start()
    for target in base.targets:
        sim.add_queue(target.queue_name, timeout=5)
    url = database_url or f"sqlite+aiosqlite:///{tmp_path / 'cards.db'}"
    s = demo_settings(base, sim.ami_port, url)
    app = App(s, features=features or [])
    await app.start()
    sim.agi_port = app.agi_address[1]
    try:
        await wait_until(lambda: app.ami.connected, what="AMI connected")
        yield Stack(sim, app, s)
    finally:
        await app.stop()
        await sim.close()
